//! Job bookmarks and append targets: each run processes exactly the new files, on a folder and on S3 (moto).
