//! Apache Superset's Flight SQL dialect (flightsql-dbapi) against the scheduler: schemas, tables, columns and a grouped query equal to the lake.
