//! ruchy-jit: a tiered execution engine for the Ruchy language.
//!
//! Data flows one way: `syntax` (source → resolved tree) → `interp` (tier 0, the
//! tree-walker) or the bytecode compiler and VM. `session` is the facade that the command
//! line, the REPL and `ruchydbg` share.

pub mod alloc;
pub mod builtins;
pub mod bytecode;
pub mod error;
pub mod function;
pub mod globals;
pub mod interp;
pub mod jit;
pub mod limits;
pub mod ops;
pub mod profile;
pub mod repl;
pub mod session;
pub mod stack;
pub mod syntax;
pub mod tiering;
pub mod value;
pub mod vm;
