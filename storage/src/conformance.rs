//! The behaviour every [`crate::Storage`] must have, as a reusable test suite.
