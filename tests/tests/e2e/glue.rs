//! The AWS Glue catalog against moto's Glue and S3: job targets and `sluice crawl` register
//! crawler-shaped tables that independent readers (boto3 + pyarrow) can follow.

use crate::moto::Moto;
use crate::support::*;

/// The Spotify example with its target registered in Glue (and `extra` target lines).
fn glue_job(dir: &std::path::Path, extra: &str) -> String {
    let job = copy_example(dir);
    let text = std::fs::read_to_string(&job).expect("read job");
    let text = text.replace("target:\n", &format!("target:\n  catalog: glue\n{extra}"));
    std::fs::write(&job, text).expect("write job");
    job.to_str().expect("utf-8").to_string()
}

fn env(moto: &Moto) -> Vec<(String, String)> {
    moto.env()
}

fn sluice_on(moto: &Moto, args: &[&str]) -> Run {
    let env = env(moto);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    sluice(args, &pairs)
}

/// Python that prints one Glue table as JSON, and what pyarrow reads at its location.
fn describe_table(moto: &Moto, database: &str, table: &str) -> serde_json::Value {
    let host = moto.endpoint.trim_start_matches("http://");
    let out = moto.python(&format!(
        r#"
import json
import pyarrow.dataset as ds
import pyarrow.fs as fs
glue = boto3.client('glue')
t = glue.get_table(DatabaseName='{database}', Name='{table}')['Table']
parts = []
for page in glue.get_paginator('get_partitions').paginate(DatabaseName='{database}', TableName='{table}'):
    parts += page['Partitions']
sd = t['StorageDescriptor']
s3fs = fs.S3FileSystem(endpoint_override='{host}', scheme='http', access_key='test', secret_key='test', region='us-east-1')
loc = sd['Location']
files = [p['StorageDescriptor']['Location'] for p in parts] or [loc]
rows = 0
for f in files:
    d = ds.dataset(f.replace('s3://', '').rstrip('/'), filesystem=s3fs, format='parquet')
    rows += d.count_rows()
print(json.dumps({{
  'table': {{k: v for k, v in t.items() if k in ('Name', 'TableType', 'Parameters', 'PartitionKeys')}},
  'sd': {{k: v for k, v in sd.items() if k != 'Columns'}},
  'columns': [[c['Name'], c['Type']] for c in sd['Columns']],
  'partitions': sorted([p['Values'], p['StorageDescriptor']['Location']] for p in parts),
  'partition_parameters': sorted([p['Values'], p.get('Parameters', {{}})] for p in parts),
  'tables_in_db': [x['Name'] for x in glue.get_tables(DatabaseName='{database}')['TableList']],
  'rows_read_by_pyarrow': rows,
}}))
"#
    ));
    serde_json::from_str(out.trim()).expect("json from python")
}

#[test]
fn glue_target_registers_a_crawler_shaped_table() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    moto.python("s3.create_bucket(Bucket='lake')");
    let job = glue_job(tmp.path(), "");
    let lake = "s3://lake/warehouse";
    let run = sluice_on(&moto, &["run", &job, "--lake", lake, "--preview", "0"]).expect_ok();
    assert!(
        run.stdout
            .contains("spotify.tracks registered in the glue catalog"),
        "{}",
        run.stdout
    );

    let t = describe_table(&moto, "spotify", "tracks");
    assert_eq!(t["table"]["TableType"], "EXTERNAL_TABLE");
    let p = &t["table"]["Parameters"];
    assert_eq!(p["classification"], "parquet");
    assert_eq!(p["compressionType"], "none");
    assert_eq!(p["typeOfData"], "file");
    assert_eq!(p["recordCount"], "19621");
    let objects: u64 = p["objectCount"].as_str().unwrap().parse().unwrap();
    let size: u64 = p["sizeKey"].as_str().unwrap().parse().unwrap();
    let average: u64 = p["averageRecordSize"].as_str().unwrap().parse().unwrap();
    assert!(objects >= 1 && size > 0 && average == size / 19621, "{p}");
    // The parameters `sluice crawl` sets, as a Glue crawler does.
    assert_eq!(p["UPDATED_BY_CRAWLER"], "sluice", "{p}");
    assert_eq!(p["CrawlerSchemaSerializerVersion"], "1.0", "{p}");
    assert_eq!(p["CrawlerSchemaDeserializerVersion"], "1.0", "{p}");
    // The query hint names the catalog the table is in.
    assert!(
        run.stdout
            .contains("FROM spotify.tracks\" --lake s3://lake/warehouse --catalog glue"),
        "{}",
        run.stdout
    );
    let sd = &t["sd"];
    let location = sd["Location"].as_str().unwrap().to_string();
    assert!(
        location.starts_with("s3://lake/warehouse/spotify/tracks/run-") && location.ends_with('/'),
        "{location}"
    );
    assert_eq!(
        sd["InputFormat"],
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    );
    assert_eq!(
        sd["OutputFormat"],
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    );
    assert_eq!(
        sd["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
    assert_eq!(sd["SerdeInfo"]["Parameters"]["serialization.format"], "1");
    // The SDK leaves a false boolean out of the request; Glue's default is false.
    assert!(
        sd["Compressed"] == false || sd["Compressed"].is_null(),
        "{sd}"
    );
    assert_eq!(sd["NumberOfBuckets"], -1);
    let columns = t["columns"].as_array().unwrap();
    let column = |name: &str| {
        columns
            .iter()
            .find(|c| c[0] == name)
            .map(|c| c[1].as_str().unwrap().to_string())
    };
    assert_eq!(columns.len(), 20);
    assert_eq!(column("track_id").as_deref(), Some("string"));
    assert_eq!(column("duration_ms").as_deref(), Some("bigint"));
    assert_eq!(column("duration_sec").as_deref(), Some("double"));
    assert_eq!(column("explicit").as_deref(), Some("boolean"));
    // An independent reader finds at the registered location as many rows as DuckDB's own
    // join of the raw CSVs has.
    let csvs = spotify_csvs(&tmp.path().join("data"));
    let csvs: Vec<(&str, &std::path::Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let total = crate::support::oracle_query("SELECT count(*) FROM spotify", &csvs);
    assert_eq!(total, [[Some("19621".to_string())]]);
    assert_eq!(t["rows_read_by_pyarrow"], 19621);
    // And the rows at the registered location are DuckDB's, whole rows.
    let copy = tmp.path().join("registered");
    download_table(&moto, &location, &copy);
    assert_eq!(
        assert_spotify_oracle(&tmp.path().join("data"), &copy),
        19621
    );

    // Sluice's own query path reads the table through Glue too.
    let q = sluice_on(
        &moto,
        &[
            "query",
            "SELECT count(*) AS n FROM spotify.tracks",
            "--lake",
            lake,
            "--catalog",
            "glue",
            "--format",
            "csv",
        ],
    )
    .expect_ok();
    assert_eq!(q.stdout.trim(), "n\n19621");

    // A failed run leaves the table as it was; a re-run moves it, with no duplicates.
    let failed = sluice(
        &["run", &job, "--lake", lake, "--preview", "0"],
        &env(&moto)
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("SLUICE_FAILPOINT", "before_commit")])
            .collect::<Vec<_>>(),
    )
    .expect_failure();
    assert!(
        failed.stderr.contains("nothing was published"),
        "{}",
        failed.stderr
    );
    let after_failure = describe_table(&moto, "spotify", "tracks");
    assert_eq!(after_failure["sd"]["Location"], location.as_str());
    sluice_on(&moto, &["run", &job, "--lake", lake, "--preview", "0"]).expect_ok();
    let rerun = describe_table(&moto, "spotify", "tracks");
    assert_ne!(rerun["sd"]["Location"], location.as_str());
    assert_eq!(rerun["tables_in_db"], serde_json::json!(["tracks"]));
    assert_eq!(rerun["rows_read_by_pyarrow"], 19621);

    // An incompatible type change is refused before anything runs.
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        text.replace("      explicit: boolean", "      explicit: string"),
    )
    .unwrap();
    let refused =
        sluice_on(&moto, &["run", &job, "--lake", lake, "--preview", "0"]).expect_failure();
    assert!(
        refused
            .stderr
            .contains("'explicit' is registered as boolean but the data has string"),
        "{}",
        refused.stderr
    );
    let unchanged = describe_table(&moto, "spotify", "tracks");
    assert_eq!(unchanged["sd"]["Location"], rerun["sd"]["Location"]);
}

#[test]
fn partitions_and_crawls_register_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    moto.python("s3.create_bucket(Bucket='lake')");
    let job = glue_job(tmp.path(), "  partition_by: [album_type]\n");
    let lake = "s3://lake/warehouse";
    for _ in 0..2 {
        sluice_on(&moto, &["run", &job, "--lake", lake, "--preview", "0"]).expect_ok();
    }
    let t = describe_table(&moto, "spotify", "tracks");
    assert_eq!(
        t["table"]["PartitionKeys"],
        serde_json::json!([{"Name": "album_type", "Type": "string"}])
    );
    let location = t["sd"]["Location"].as_str().unwrap();
    // The expected partitions and their rows come from the raw CSVs: DuckDB's own join.
    let csvs = spotify_csvs(&tmp.path().join("data"));
    let csvs: Vec<(&str, &std::path::Path)> = csvs.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let per_value = crate::support::oracle_query(
        "SELECT album_type, count(*) FROM spotify GROUP BY album_type ORDER BY album_type",
        &csvs,
    );
    let counts: Vec<(String, u64)> = per_value
        .iter()
        .map(|r| {
            (
                r[0].clone().expect("no NULL album_type in the data"),
                r[1].as_deref()
                    .and_then(|n| n.parse().ok())
                    .expect("a count"),
            )
        })
        .collect();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let expected: Vec<serde_json::Value> = counts
        .iter()
        .map(|(v, _)| serde_json::json!([[v], format!("{location}album_type={v}/")]))
        .collect();
    assert!(expected.len() >= 2, "{per_value:?}");
    assert_eq!(t["partitions"], serde_json::Value::Array(expected));
    assert_eq!(t["rows_read_by_pyarrow"], total);
    // A partition's counts are its own (the oracle's count for its value), never the
    // table's totals; the table's other parameters carry over.
    let mut counted = 0;
    for pair in t["partition_parameters"].as_array().unwrap() {
        let value = pair[0][0].as_str().expect("a partition value");
        let p = &pair[1];
        assert_eq!(p["UPDATED_BY_CRAWLER"], "sluice", "{p}");
        assert_eq!(p["classification"], "parquet", "{p}");
        if let Some(rows) = p["recordCount"].as_str() {
            let rows: u64 = rows.parse().unwrap();
            let want = counts.iter().find(|(v, _)| v == value).map(|(_, n)| *n);
            assert_eq!(Some(rows), want, "rows of partition {value}: {p}");
            counted += rows;
        }
    }
    assert!(counted == 0 || counted == total, "{counted}");
    // The partitioned files hold DuckDB's rows, the key read back from the folders.
    let copy = tmp.path().join("registered");
    download_table(&moto, location, &copy);
    assert_eq!(
        assert_spotify_oracle(&tmp.path().join("data"), &copy),
        total
    );

    // Parquet written by pyarrow, Hive-partitioned, crawled twice.
    moto.python(&format!(
        r#"
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.fs as fs
s3fs = fs.S3FileSystem(endpoint_override='{}', scheme='http', access_key='test', secret_key='test', region='us-east-1')
for year, ids in [(2023, [1, 2, 3]), (2024, [4, 5])]:
    t = pa.table({{'id': pa.array(ids, pa.int64()), 'name': pa.array([str(i) for i in ids]), 'score': pa.array([i / 2 for i in ids])}})
    pq.write_table(t, f'lake/raw/events/year={{year}}/part-0.parquet', filesystem=s3fs)
"#,
        moto.endpoint.trim_start_matches("http://")
    ));
    for _ in 0..2 {
        let crawl = sluice_on(
            &moto,
            &[
                "crawl",
                "s3://lake/raw/events/",
                "--database",
                "raw",
                "--catalog",
                "glue",
                "--lake",
                lake,
            ],
        )
        .expect_ok();
        assert!(
            crawl
                .stdout
                .contains("raw.events registered in the glue catalog"),
            "{}",
            crawl.stdout
        );
    }
    let e = describe_table(&moto, "raw", "events");
    assert_eq!(
        e["columns"],
        serde_json::json!([["id", "bigint"], ["name", "string"], ["score", "double"]])
    );
    assert_eq!(
        e["table"]["PartitionKeys"],
        serde_json::json!([{"Name": "year", "Type": "string"}])
    );
    assert_eq!(
        e["partitions"],
        serde_json::json!([
            [["2023"], "s3://lake/raw/events/year=2023/"],
            [["2024"], "s3://lake/raw/events/year=2024/"]
        ])
    );
    assert_eq!(e["table"]["Parameters"]["recordCount"], "5");
    assert_eq!(e["table"]["Parameters"]["UPDATED_BY_CRAWLER"], "sluice");
    // Each partition counts its own rows, files and bytes.
    let counts: Vec<(String, String)> = e["partition_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[1]["recordCount"].as_str().unwrap().to_string(),
                pair[1]["objectCount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("3".to_string(), "1".to_string()),
            ("2".to_string(), "1".to_string())
        ]
    );
    let table_size: u64 = e["table"]["Parameters"]["sizeKey"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sizes: u64 = e["partition_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1]["sizeKey"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sizes, table_size);
    assert_eq!(e["tables_in_db"], serde_json::json!(["events"]));
    assert_eq!(e["rows_read_by_pyarrow"], 5);
}
