#!/usr/bin/env bash
# Installs the TeX Live pieces the workbook uses, from Debian packages, when any is missing.
# Idempotent: does nothing (and needs no network) when everything is already there.
set -euo pipefail
# latex-cjk-*: CJKutf8 and the Arphic fonts, so Chinese and Japanese names on handouts print;
# texlive-lang-arabic: ArabTeX, for Arabic and Persian names.
packages=(texlive-latex-base texlive-latex-recommended texlive-latex-extra
          texlive-fonts-recommended texlive-pictures lmodern latexmk poppler-utils
          latex-cjk-chinese latex-cjk-chinese-arphic-gbsn00lp latex-cjk-chinese-arphic-bsmi00lp
          texlive-lang-arabic)
need_install=0
for cmd in pdflatex latexmk pdftotext pdftoppm kpsewhich; do
  command -v "$cmd" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 0 ]; then
  for sty in geometry.sty fancyhdr.sty hyperref.sty bookmark.sty xcolor.sty booktabs.sty \
             longtable.sty lmodern.sty microtype.sty enumitem.sty titlesec.sty needspace.sty \
             pdfpages.sty xr-hyper.sty tikz.sty CJKutf8.sty gbsnu67.tfm bsmiu5f.tfm \
             arabtex.sty; do
    kpsewhich "$sty" >/dev/null 2>&1 || { need_install=1; break; }
  done
fi
[ "$need_install" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
else
  sudo=""
fi
echo "Installing TeX Live from Debian packages: ${packages[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
