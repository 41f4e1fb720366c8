//! The dashboard playground in a real browser: build a panel, save it as YAML, edit the file and see the page change.
