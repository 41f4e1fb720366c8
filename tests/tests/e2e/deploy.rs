//! The container image, the docker-compose stack and the Helm chart, run for real where they can be.
