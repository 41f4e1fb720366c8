//! S3 credentials from the one AWS chain (profiles in a credentials file), against moto.
//!
//! moto accepts any key unless told otherwise, so the test turns on moto's IAM enforcement
//! (`/moto-api/reset-auth`): from then on every request must be signed with the key of an
//! IAM user that moto knows and whose policy allows the action. That user's key exists only
//! in a profile of a temporary credentials file; a run signed with any other key fails.

use std::path::Path;
use std::process::Command;

use crate::moto::{Moto, venv};
use crate::support::*;

/// Environment variables that could hand the process credentials or a profile from the
/// machine running the tests; each run below starts without them.
const AMBIENT_AWS: [&str; 10] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Runs `sluice ARGS` with only `env` for AWS settings (nothing inherited).
fn sluice_aws(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary("sluice"));
    cmd.args(args)
        .env_remove("SLUICE_LAKE")
        .env_remove("SLUICE_FAILPOINT");
    for var in AMBIENT_AWS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("sluice starts");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Tells moto to enforce IAM on every request from now on (`after` = 0), or never again
/// (`inf`).
fn moto_auth(moto: &Moto, after: &str) {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(format!(
            "import urllib.request\nurllib.request.urlopen(urllib.request.Request('{}/moto-api/reset-auth', data=b'{after}', method='POST', headers={{'Content-Type': 'text/plain'}})).read()",
            moto.endpoint
        ))
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "reset-auth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Spotify job reading its staging from `s3://staging/spotify/`.
fn s3_job(dir: &Path) -> String {
    let job = dir.join("job.yaml");
    let text = std::fs::read_to_string(repo().join("examples/spotify/job.yaml")).expect("read");
    std::fs::write(
        &job,
        text.replace("staging: data", "staging: s3://staging/spotify/"),
    )
    .expect("write job");
    job.to_str().expect("utf-8").to_string()
}

#[test]
fn s3_staging_and_lake_with_credentials_only_in_a_named_profile() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    let data = spotify_data();
    // Set up while moto still accepts anyone: buckets, the staging CSVs, and an IAM user
    // allowed to use S3 whose key goes into the profile.
    let key = moto.python(&format!(
        r#"
for b in ['staging', 'lake']:
    s3.create_bucket(Bucket=b)
for t in ['albums', 'artists', 'tracks']:
    s3.upload_file('{data}/' + t + '.csv', 'staging', 'spotify/' + t + '.csv')
iam = boto3.client('iam')
iam.create_user(UserName='sluice-etl')
iam.put_user_policy(UserName='sluice-etl', PolicyName='s3',
    PolicyDocument='{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}]}}')
k = iam.create_access_key(UserName='sluice-etl')['AccessKey']
print(k['AccessKeyId'], k['SecretAccessKey'])
"#,
        data = data.display()
    ));
    let (key_id, secret) = key.trim().split_once(' ').expect("a key id and secret");
    assert_ne!(key_id, "test");

    let credentials = tmp.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = test\naws_secret_access_key = test\n\n\
             [sluice-etl]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .expect("write credentials");
    let config = tmp.path().join("config");
    std::fs::write(&config, "[default]\nregion = us-east-1\n").expect("write config");
    let credentials = credentials.to_str().expect("utf-8");
    let config = config.to_str().expect("utf-8");
    let common = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials),
        ("AWS_CONFIG_FILE", config),
        // No instance metadata on a test machine: fail fast instead of waiting for it.
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = common.to_vec();
        env.extend_from_slice(extra);
        env
    };

    let job = s3_job(tmp.path());
    let lake = "s3://lake/warehouse";
    moto_auth(&moto, "0");

    // Control: the default profile's key is not an IAM user's, and moto now refuses it.
    let refused = sluice_aws(&["run", &job, "--lake", lake], &with(&[])).expect_failure();
    assert!(
        refused.stderr.contains("InvalidAccessKeyId") || refused.stderr.contains("403"),
        "moto enforces IAM: {}",
        refused.stderr
    );

    // A profile that does not exist is named in the error.
    let missing = sluice_aws(
        &["run", &job, "--lake", lake],
        &with(&[("AWS_PROFILE", "no-such-profile")]),
    )
    .expect_failure();
    assert!(
        missing.stderr.contains("'no-such-profile'")
            && missing.stderr.contains("not defined")
            && missing.stderr.contains(credentials),
        "{}",
        missing.stderr
    );

    // The profile's key: staging read and lake written, every request signed with it.
    let run = sluice_aws(
        &["run", &job, "--lake", lake],
        &with(&[("AWS_PROFILE", "sluice-etl")]),
    )
    .expect_ok();
    assert!(run.stdout.contains("wrote  19,621 rows"), "{}", run.stdout);
    let query = sluice_aws(
        &[
            "query",
            "SELECT count(*) AS n FROM spotify.tracks",
            "--lake",
            lake,
            "--format",
            "csv",
        ],
        &with(&[("AWS_PROFILE", "sluice-etl")]),
    )
    .expect_ok();
    assert_eq!(csv_count(&query), 19621);

    // Checked by boto3 and DuckDB, with moto open again: the committed files hold the
    // oracle's rows.
    moto_auth(&moto, "inf");
    let location = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("s3://lake/warehouse/spotify/tracks/run-"))
        .unwrap_or_else(|| panic!("the version's location in:\n{}", run.stdout))
        .to_string();
    let copy = tmp.path().join("from-s3");
    download_table(&moto, &location, &copy);
    assert_eq!(assert_spotify_oracle(&data, &copy), 19621);
}
