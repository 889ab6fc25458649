//! Domain operations that take more than one store call: signing up and in, deploying
//! a bundle, accepting and awaiting an invocation. Handlers stay thin by calling these.

pub mod accounts;
pub mod deploy;
pub mod invoke;
