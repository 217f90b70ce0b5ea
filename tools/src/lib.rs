//! Demo data shared by the seeder, the benchmarks and the tests.

pub mod demo;
