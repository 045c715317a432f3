// make docs, after bundle.py: compiles the wheels served beside the playground to bytecode for Pyodide's own
// Python, with Pyodide itself (the same npm package the page loads, run by Node), and packs them with
// playground.py and paramsym's saved parser tables into one zip that the page imports from (zipimport).
// Importing SymPy from source in the browser spends seconds compiling it; from bytecode it does not.
//
// The zips store their members uncompressed (ZIP_STORED) with fixed dates: Brotli or gzip over the whole file
// (compress.mjs, the last step here) then compresses far better than over members deflated one by one, and the
// same input gives the same zip (so its compressed copies are reused from the cache). The wheels and Pyodide's
// source standard library are inputs only: they are removed from the site once compiled.
//
// usage: node docs/playground/compile.mjs SITE/playground
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadPyodide } from "./node_modules/pyodide/pyodide.mjs";
import { compressTree } from "./compress.mjs";

const target = resolve(process.argv[2] || "site/playground");
const manifest = JSON.parse(readFileSync(join(target, "manifest.json"), "utf8"));
// a fixed hash seed: the saved parser tables (a pickle of sets) come out the same from the same grammar, so an
// unchanged bundle is the same file and its compressed copies come from the cache
const pyodide = await loadPyodide({ packages: [], env: { PYTHONHASHSEED: "0" } });
const work = "/tmp/bundle";
pyodide.FS.mkdirTree(`${work}/site`);
for (const name of manifest.wheels) {
  pyodide.unpackArchive(new Uint8Array(readFileSync(join(target, "wheels", name))), "wheel", { extractDir: `${work}/site` });
}
pyodide.FS.writeFile(`${work}/site/playground.py`, readFileSync(new URL("./playground.py", import.meta.url), "utf8"));
pyodide.globals.set("WORK", work);
pyodide.runPython(`
import compileall, os, py_compile, shutil, sys, warnings, zipfile
site = WORK + "/site"
# the libraries' own test suites are not needed on the page, nor the parts of SymPy that neither paramsym nor
# "import sympy" imports (its benchmarks, physics, statistics, the LaTeX and Autolev parsers)
for folder, dirs, files in os.walk(site):
    for name in [d for d in dirs if d == "tests"]:
        shutil.rmtree(os.path.join(folder, name))
        dirs.remove(name)
for part in ("polys/benchmarks", "physics", "stats", "parsing/autolev", "parsing/latex"):
    shutil.rmtree(os.path.join(site, "sympy", part))
warnings.filterwarnings("ignore", category=SyntaxWarning)  # old escapes in the libraries' sources
# sourceless bytecode beside each module (Pyodide's own packages ship this way): no source to compile, no
# time stamps to check
assert compileall.compile_dir(site, quiet=1, legacy=True, optimize=0,
                              invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
# a source read as text stays: the PyTorch export copies paramsym's helper classes from torch_modules.py
KEEP = {os.path.join(site, "paramsym", "frameworks", "torch_modules.py")}
for folder, dirs, files in os.walk(site):
    for name in files:
        if name.endswith(".py") and os.path.join(folder, name) not in KEEP:
            os.remove(os.path.join(folder, name))
    for name in [d for d in dirs if d == "__pycache__"]:
        shutil.rmtree(os.path.join(folder, name))
# paramsym's LALR tables, saved the way paramsym.language.parser_cache saves them for a user
os.environ["XDG_CACHE_HOME"] = WORK + "/cache"
sys.path.insert(0, site)
import playground
playground.run('{"program": "conv3x3(32->64, bias) > pool > conv5x5(->40)"}')
purelib = __import__("sysconfig").get_paths()["purelib"].lstrip("/")
with zipfile.ZipFile(WORK + "/python.zip", "w", zipfile.ZIP_STORED) as out:
    for root, prefix in ((site, purelib), (WORK + "/cache", "home/pyodide/.cache")):
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                with open(path, "rb") as data:
                    out.writestr(zipfile.ZipInfo(os.path.join(prefix, os.path.relpath(path, root))), data.read())
`);
writeFileSync(join(target, "python.zip"), pyodide.FS.readFile(`${work}/python.zip`));

// Pyodide's standard library ships as source: compile it the same way, so that starting Python does not
// compile the modules it imports on every load.
pyodide.FS.writeFile(`${work}/stdlib.zip`, new Uint8Array(readFileSync(join(target, "vendor/pyodide/python_stdlib.zip"))));
pyodide.runPython(`
import importlib._bootstrap_external as external, zipfile
with zipfile.ZipFile(WORK + "/stdlib.zip") as source, \\
        zipfile.ZipFile(WORK + "/stdlib_pyc.zip", "w", zipfile.ZIP_STORED) as out:
    for info in source.infolist():
        data = source.read(info)
        if info.filename.endswith(".py"):
            code = compile(data, "/lib/python%d%d.zip/" % sys.version_info[:2] + info.filename, "exec",
                           dont_inherit=True)
            out.writestr(zipfile.ZipInfo(info.filename + "c", info.date_time),
                         bytes(external._code_to_timestamp_pyc(code, 0, 0)))
        else:
            info.compress_type = zipfile.ZIP_STORED
            out.writestr(info, data)
`);
writeFileSync(join(target, "vendor/pyodide/python_stdlib_pyc.zip"), pyodide.FS.readFile(`${work}/stdlib_pyc.zip`));
manifest.stdlib = "vendor/pyodide/python_stdlib_pyc.zip";
manifest.bundle = "python.zip";
manifest.python = pyodide.runPython("import sys; '%d.%d.%d' % sys.version_info[:3]");
writeFileSync(join(target, "manifest.json"), JSON.stringify(manifest, null, 1));
console.log(`playground: python.zip (${(readFileSync(join(target, "python.zip")).length / 1e6).toFixed(1)} MB) ` +
  `compiled for Python ${manifest.python} from ${readdirSync(join(target, "wheels")).length} wheels`);
// the inputs, which the page does not load
rmSync(join(target, "wheels"), { recursive: true });
rmSync(join(target, "vendor/pyodide/python_stdlib.zip"));

// .br and .gz beside every file of the site worth compressing (served by serve.py, or by a host's static
// compression: see docs/playground.md)
await compressTree(dirname(target));
