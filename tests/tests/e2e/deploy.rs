//! The container image, the docker-compose stack and the Helm chart are tested outside this
//! binary, by `tests/run` after the cargo tests: `deploy/validate.py` (the chart linted,
//! rendered and checked against Kubernetes' schemas, the compose files against the Compose
//! specification) and `tests/deploy_stack.py` (the image built and the stack run in
//! containers, with an executor killed and another cut off mid-task). They build images
//! and need a Docker engine, which `cargo test` should not.
