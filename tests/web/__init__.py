"""The offline browser harness: a static server, a headless Chromium driver, the page and its Python."""
