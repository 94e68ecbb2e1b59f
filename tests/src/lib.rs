//! Cross-crate integration and fault tests for the resilience framework.
//!
//! The tests live in `tests/`: the macro's behaviour end to end, and the PostgreSQL
//! connector against a real server with real faults (the `resilience-chaos` proxy,
//! `pg_terminate_backend`, a server restart). The server comes from
//! `test_support::postgres`: `DATABASE_URL`, else 127.0.0.1:5432, else a throwaway
//! cluster.
#![forbid(unsafe_code)]
