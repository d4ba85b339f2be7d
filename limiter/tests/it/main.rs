//! Integration tests of the limiter: exact counts, redis-cell's reply table,
//! and property tests against simple reference models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cell_model;
mod cell_table;
mod exact;
mod model;
mod props;
mod props_lease;
