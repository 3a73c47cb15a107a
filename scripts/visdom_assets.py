"""The JavaScript, CSS and fonts that visdom 0.2.4's server downloads on first start, as npm files.

``python -m visdom.server`` fetches these from CDNs at start-up and crashes offline. The same
files ship in npm packages; ``scripts/install_visdom_assets.sh`` installs those packages and
then calls this helper to copy each file where visdom's downloader (visdom/server/build.py)
would have put it, and to write the ``version.built`` marker that stops visdom downloading again.

    python scripts/visdom_assets.py packages            # "name@version ..." for npm install
    python scripts/visdom_assets.py copy NODE_MODULES   # copy into visdom's static folder
    python scripts/visdom_assets.py check               # exit 1 and list what is missing
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

# Pinned to the versions visdom 0.2.4's build.py asks the CDNs for. d3 "v3" and
# d3-selection-multi "v1" are the last releases of those majors.
PACKAGES = {
    "jquery": "3.1.1",
    "bootstrap": "3.3.7",
    "react": "16.2.0",
    "react-dom": "16.2.0",
    "react-modal": "3.1.10",
    "plotly.js-dist-min": "2.11.1",
    "sjcl": "1.0.7",
    "layout-bin-packer": "1.4.0",
    "d3": "3.5.17",
    "d3-selection-multi": "1.0.1",
    "save-svg-as-png": "1.4.17",
    "react-resizable": "1.4.6",
    "react-grid-layout": "0.16.3",
    "classnames": "2.2.5",
    "mathjax": "2.7.5",
}


class Asset(NamedTuple):
    package: str
    source: str  # path inside the npm package
    target: str  # path under visdom/static, named as visdom's downloader names it


_GLYPHS = "bootstrap", "dist/fonts/glyphicons-halflings-regular"
_MATHJAX = "js/mathjax/2.7.5"

ASSETS = [
    Asset("jquery", "dist/jquery.min.js", "js/jquery.min.js"),
    Asset("bootstrap", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    Asset("react", "umd/react.production.min.js", "js/react-react.min.js"),
    Asset("react-dom", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    Asset("react-modal", "dist/react-modal.min.js", "js/react-modal.min.js"),
    Asset("plotly.js-dist-min", "plotly.min.js", "js/plotly-plotly.min.js"),
    Asset("sjcl", "sjcl.js", "js/sjcl.js"),
    Asset("layout-bin-packer", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    Asset("layout-bin-packer", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    Asset("d3", "d3.min.js", "js/d3.v3.min.js"),
    Asset("d3-selection-multi", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    Asset("save-svg-as-png", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    Asset("react-resizable", "css/styles.css", "css/react-resizable-styles.css"),
    Asset("react-grid-layout", "css/styles.css", "css/react-grid-layout-styles.css"),
    Asset("bootstrap", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    # visdom stores the classnames entry file under fonts/ with no extension; keep its name.
    Asset("classnames", "index.js", "fonts/classnames"),
    *(Asset(_GLYPHS[0], f"{_GLYPHS[1]}.{ext}", f"fonts/glyphicons-halflings-regular.{ext}")
      for ext in ("eot", "woff2", "woff", "ttf")),
    Asset(_GLYPHS[0], f"{_GLYPHS[1]}.svg",
          "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular"),
    *(Asset("mathjax", path, f"{_MATHJAX}/{path}") for path in (
        "MathJax.js",
        "config/TeX-AMS-MML_HTMLorMML.js",
        "extensions/Safe.js",
        "jax/output/SVG/jax.js",
        "jax/output/SVG/config.js",
        "jax/output/SVG/fonts/TeX/fontdata.js",
        "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
    )),
]

# visdom's downloader also asks for config/Safe.js, which MathJax 2.7.5 does not have (the CDN
# answers with an error page). The file must exist or visdom tries to download it again.
STUBS = {f"{_MATHJAX}/config/Safe.js": "/* not part of MathJax 2.7.5; placeholder for visdom */\n"}


def visdom_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise SystemExit("error: visdom is not installed in this Python "
                         f"({sys.executable}); install it first")
    return Path(spec.origin).parent


def copy_assets(node_modules: Path, static: Path) -> list[str]:
    """Copy every asset; returns the targets whose source was missing."""
    missing = []
    for asset in ASSETS:
        source = node_modules / asset.package / asset.source
        if not source.is_file():
            missing.append(f"{asset.package}/{asset.source}")
            continue
        target = static / asset.target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for target_name, text in STUBS.items():
        target = static / target_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_text(text)
    return missing


def missing_targets(static: Path) -> list[str]:
    wanted = [a.target for a in ASSETS] + list(STUBS)
    return [t for t in wanted if not (static / t).is_file()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("packages", help="print the npm packages to install")
    copy = sub.add_parser("copy", help="copy the assets from an npm node_modules folder")
    copy.add_argument("node_modules", type=Path)
    sub.add_parser("check", help="list the assets missing from visdom's static folder")
    args = parser.parse_args(argv)

    if args.command == "packages":
        print(" ".join(f"{name}@{version}" for name, version in PACKAGES.items()))
        return 0
    static = visdom_dir() / "static"  # exits with a clear message when visdom is missing
    import visdom
    if args.command == "copy":
        if not args.node_modules.is_dir():
            print(f"error: {args.node_modules}: no such node_modules folder", file=sys.stderr)
            return 2
        missing = copy_assets(args.node_modules, static)
        if missing:
            print("error: these files were not in the npm packages: " + ", ".join(missing),
                  file=sys.stderr)
            return 1
        # The marker visdom's downloader checks: with it and every file present, it fetches nothing.
        (static / "version.built").write_text(visdom.__version__)
        print(f"installed {len(ASSETS) + len(STUBS)} visdom assets into {static}")
        return 0
    missing = missing_targets(static)
    for target in missing:
        print(f"missing: {static / target}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
