//! Demo data for the seeder (`seed`); the local token helper is `token`.
//! Both are developer tools: nothing here is deployed.

pub mod demo;
