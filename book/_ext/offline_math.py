"""Math that renders offline: the book loads MathJax 2 from its own `_static/mathjax`, copied at
build time from Debian's `libjs-mathjax` (installed by `make setup`), never from a CDN."""
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

MATHJAX = Path("/usr/share/javascript/mathjax")
# what TeX input with CommonHTML output needs: the loader, its one-file configuration, the jax it
# loads on demand, the extensions TeX asks for, and the web fonts
PARTS = ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "extensions", "jax/input/TeX", "jax/output/CommonHTML",
         "jax/element", "fonts/HTML-CSS/TeX/woff", "localization/en")


def _config(app, config) -> None:
    if not (MATHJAX / "MathJax.js").exists():
        raise ExtensionError(f"offline math needs MathJax in {MATHJAX}: apt-get install libjs-mathjax "
                             "(make setup does it)")
    config.mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML-full"
    # MathJax 2 reads a `window.MathJax` object set before it loads (Sphinx writes mathjax3_config
    # there) as its configuration: notebook chapters sit in a `tex2jax_ignore` section, so name the
    # classes whose math is processed anyway (what myst-nb's option does for MathJax 3)
    config.mathjax3_config = {**(config.mathjax3_config or {}),
                              "tex2jax": {"processClass": "math|output_area|tex2jax_process|mathjax_process"}}


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        src = MATHJAX / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)


def setup(app):
    app.connect("config-inited", _config)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
