//! placeholder

pub mod bench;
