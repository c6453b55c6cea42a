package dev.kwal.samples

import dev.kwal.Wal
import dev.kwal.engine.Kwal
import dev.kwal.typed.TypedTopic
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CoroutineScope
import java.lang.module.Configuration
import java.lang.module.ModuleFinder
import java.nio.file.Path
import java.util.jar.JarFile
import kotlin.io.path.isRegularFile

/**
 * kwal's jars as Java modules (JPMS): each jar names its module (`Automatic-Module-Name`), and no package is split
 * across them, so an application on the module path can load both in one layer.
 *
 * It checks the jars Maven built (`mvn verify` packages `wal-api` and `wal-impl` before this module's tests run);
 * where the classpath holds class directories instead (`mvn test` alone), there are no jars to check and it says so.
 */
class ModulesSpec :
    FunSpec({
        fun jarOf(c: Class<*>): Path = Path.of(c.protectionDomain.codeSource.location.toURI())
        val api = jarOf(Wal::class.java)
        val engine = jarOf(Kwal::class.java)
        val typed = jarOf(TypedTopic::class.java)
        val jars = api.isRegularFile() && engine.isRegularFile() && typed.isRegularFile()
        if (!jars) println("ModulesSpec: no jars on the classpath ($api, $engine): run it under `mvn verify`")

        test("each jar names a stable module").config(enabled = jars) {
            JarFile(api.toFile()).use { it.manifest.mainAttributes.getValue("Automatic-Module-Name") } shouldBe
                "dev.kwal"
            JarFile(engine.toFile()).use { it.manifest.mainAttributes.getValue("Automatic-Module-Name") } shouldBe
                "dev.kwal.engine"
            JarFile(typed.toFile()).use { it.manifest.mainAttributes.getValue("Automatic-Module-Name") } shouldBe
                "dev.kwal.typed"
        }

        test("no package is split across the jars, and both load as modules in one layer").config(enabled = jars) {
            val finder = ModuleFinder.of(api, engine)
            val apiPackages = finder.find("dev.kwal").get().descriptor().packages()
            val enginePackages = finder.find("dev.kwal.engine").get().descriptor().packages()
            apiPackages.intersect(enginePackages).shouldBeEmpty()
            val typedPackages = ModuleFinder.of(typed).find("dev.kwal.typed").get().descriptor().packages()
            typedPackages shouldBe setOf("dev.kwal.typed")
            typedPackages.intersect(apiPackages + enginePackages).shouldBeEmpty()
            // The libraries they use, as automatic modules too.
            val libraries = ModuleFinder.of(jarOf(Unit::class.java), jarOf(CoroutineScope::class.java))
            val config = Configuration.resolve(
                ModuleFinder.compose(finder, libraries),
                listOf(ModuleLayer.boot().configuration()),
                ModuleFinder.of(),
                listOf("dev.kwal.engine", "dev.kwal"),
            )
            val layer = ModuleLayer.boot().defineModulesWithOneLoader(config, ClassLoader.getPlatformClassLoader())
            val loaded = layer.findLoader("dev.kwal.engine").loadClass("dev.kwal.engine.Kwal")
            loaded.module.name shouldBe "dev.kwal.engine"
        }
    })
