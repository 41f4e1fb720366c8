//! Data-quality rules (DQDL) on a run's output: each rule kind passes and fails on crafted data; a failing `fail` rule publishes nothing.
