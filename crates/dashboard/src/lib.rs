//! Dashboards as code: the YAML format, its validation, and the HTTP pages and API.
