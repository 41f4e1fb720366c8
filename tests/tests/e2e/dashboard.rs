//! The dashboard pages and API against real lakes, in a real browser (Chromium via Playwright).
