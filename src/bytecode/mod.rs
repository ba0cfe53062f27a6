//! The bytecode: one opcode enum with its disassembler (`op`), function prototypes
//! (`proto`) and the compiler from the resolved AST (`compile`).

pub mod compile;
pub mod dataflow;
pub mod op;
pub mod proto;
