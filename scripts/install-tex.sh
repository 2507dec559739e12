#!/usr/bin/env bash
# Installs the TeX Live pieces the workbook uses, from Debian packages, when any is missing.
# Idempotent: does nothing (and needs no network) when everything is already there.
set -euo pipefail
# texlive-luatex and the Noto fonts: a roster's names in their own scripts, set by LuaLaTeX
# with HarfBuzz (workbook/names.py); luaotfload's font list is made once, system-wide.
packages=(texlive-latex-base texlive-latex-recommended texlive-latex-extra
          texlive-fonts-recommended texlive-pictures lmodern latexmk poppler-utils
          texlive-luatex fonts-noto-core fonts-noto-cjk)
need_install=0
for cmd in pdflatex lualatex latexmk pdftotext pdftoppm kpsewhich fc-list; do
  command -v "$cmd" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 0 ]; then
  for sty in geometry.sty fancyhdr.sty hyperref.sty bookmark.sty xcolor.sty booktabs.sty \
             longtable.sty lmodern.sty microtype.sty enumitem.sty titlesec.sty needspace.sty \
             pdfpages.sty xr-hyper.sty tikz.sty luaotfload.sty lmroman10-regular.otf; do
    kpsewhich "$sty" >/dev/null 2>&1 || { need_install=1; break; }
  done
fi
if [ "$need_install" = 0 ]; then
  for font in "Noto Sans CJK SC" "Noto Sans Arabic" "Noto Serif"; do
    fc-list ":family=$font" | grep -q . || { need_install=1; break; }
  done
fi
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
else
  sudo=""
fi
if [ "$need_install" = 1 ]; then
  echo "Installing TeX Live from Debian packages: ${packages[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# luaotfload's list of the installed fonts, in TeX's system cache: without it every LuaLaTeX
# run, whose cache is private, would list the fonts again (seconds each)
cache=$(kpsewhich -var-value TEXMFSYSVAR)/luatex-cache/generic/names/luaotfload-names.luc.gz
if [ ! -f "$cache" ]; then
  echo "Listing the installed fonts for LuaLaTeX (luaotfload-tool --update)" >&2
  $sudo env TEXMFCACHE="$(kpsewhich -var-value TEXMFSYSVAR)" luaotfload-tool --update >/dev/null
fi
