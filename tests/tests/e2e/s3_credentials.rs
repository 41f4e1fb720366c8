//! S3 credentials from the one AWS chain (profiles in a credentials file), against moto.
