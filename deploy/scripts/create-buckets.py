"""Creates the staging and lake buckets and uploads the Spotify sample, with boto3: the test
stack's `buckets` service (deploy/docker-compose.test.yaml), in place of MinIO's `mc`.

    python3 create-buckets.py SAMPLE_DIR

Endpoint, region and credentials come from the standard AWS_* environment variables.
"""

import os
import sys

import boto3


def main(sample_dir):
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in ("staging", "lake"):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    for name in sorted(os.listdir(sample_dir)):
        if name.endswith(".csv"):
            s3.upload_file(os.path.join(sample_dir, name), "staging", f"spotify/{name}")
            print(f"uploaded s3://staging/spotify/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
