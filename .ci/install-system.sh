#!/usr/bin/env bash
# System packages for the test suite: Chromium, to render the HTML report headless
# (tests/test_report.py skips that test, with its reason, when no browser is on PATH).
# Quiet; a failure only warns, so CI without root or network still runs every other test.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "warning: not root and no sudo: chromium not installed; the HTML report test will be skipped" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get: install chromium yourself; the HTML report test will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; }; then
  if ! $SUDO apt-get install -y -qq chromium-browser >/dev/null 2>&1; then
    echo "warning: apt-get could not install chromium; the HTML report test will be skipped" >&2
  fi
fi
exit 0
