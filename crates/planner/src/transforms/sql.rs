//! `sql`: a SQL query over the listed inputs, each registered as a view under its node name
//! in a session of the transform's own (submissions are planned concurrently and must not
//! see or remove each other's names). Only queries are allowed: DDL could register files
//! from anywhere, and `COPY` or `INSERT` would write outside the target when the plan runs.
//! The result carries no join keys.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SQLOptions, SessionContext};
use sluice_proto as pb;

use crate::{Node, PlanError, lookup, requalify, transform_error};

/// Plans the transform `name` at `path` (`transforms[i]`) in a session derived from `ctx`.
pub(super) async fn plan(
    ctx: &SessionContext,
    nodes: &HashMap<String, Node>,
    s: &pb::Sql,
    name: &str,
    path: &str,
) -> Result<Node, PlanError> {
    let p = format!("{path}.sql");
    let own = own_session(ctx);
    for (i, input) in s.inputs.iter().enumerate() {
        let node = lookup(nodes, input, &format!("{p}.inputs[{i}]"))?;
        own.register_table(input.as_str(), node.df.clone().into_view())
            .map_err(|e| transform_error(e, input, &format!("{p}.inputs[{i}]")))?;
    }
    failpoint_pause().await;
    let query_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let planned = own.sql_with_options(&s.query, query_only).await;
    let df = planned.map_err(|e| transform_error(e, name, &format!("{p}.query")))?;
    Ok(Node {
        df: requalify(df, name).map_err(|e| transform_error(e, name, &p))?,
        join_keys: Vec::new(),
    })
}

/// A session sharing `ctx`'s configuration, functions, planner and object stores, with an
/// empty catalog of its own (the default catalog and schema, nothing in them).
fn own_session(ctx: &SessionContext) -> SessionContext {
    let state = ctx.state();
    let options = state.config().options();
    let catalog_name = options.catalog.default_catalog.clone();
    let schema_name = options.catalog.default_schema.clone();
    let catalog = Arc::new(MemoryCatalogProvider::new());
    // A fresh catalog has no schemas, so this replaces nothing.
    let _ = catalog.register_schema(&schema_name, Arc::new(MemorySchemaProvider::new()));
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog(catalog_name, catalog);
    SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(catalogs)
            .build(),
    )
}

/// With `SLUICE_FAILPOINT=slow_sql_transform`, waits 1.5 s after a `sql` transform's
/// inputs are registered: tests use it to overlap the planning of two submissions.
async fn failpoint_pause() {
    let on = std::env::var("SLUICE_FAILPOINT")
        .is_ok_and(|v| v.split(',').any(|f| f == "slow_sql_transform"));
    if !on {
        return;
    }
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = done.send(());
    });
    let _ = wait.await;
}
