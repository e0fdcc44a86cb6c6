#!/usr/bin/env bash
# System packages for the test suite: Chromium, to render the HTML report and the viewer headless
# (tests/test_report.py, tests/test_viewer.py skip those tests, with their reason, when no browser is
# on PATH), and a CJK font (fonts-noto-cjk) so that Chinese prompts and outputs render as glyphs,
# not empty boxes, in the browser and in the docs' screenshot.
# Quiet; a failure only warns, so CI without root or network still runs every other test.
set -u
have_browser() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1
}
have_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .
}
if have_browser && have_cjk_font; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "warning: not root and no sudo: chromium/fonts-noto-cjk not installed; the browser tests may be skipped" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get: install chromium and a CJK font yourself; the browser tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || echo "warning: apt-get update failed" >&2
if ! have_browser; then
  if ! $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
    if ! $SUDO apt-get install -y -qq chromium-browser >/dev/null 2>&1; then
      echo "warning: apt-get could not install chromium; the browser tests will be skipped" >&2
    fi
  fi
fi
if ! have_cjk_font; then
  $SUDO apt-get install -y -qq fonts-noto-cjk >/dev/null 2>&1 \
    || echo "warning: apt-get could not install fonts-noto-cjk; Chinese text may render as boxes" >&2
fi
exit 0
