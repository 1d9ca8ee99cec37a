//! The built-in child agent loop and what it calls: tools, MCP servers, budgets; and the
//! `command:` backend that hands a whole child to an external agent CLI.

pub mod budget;
pub mod command;
pub mod mcp;
pub mod realize;
pub mod session;
pub mod shared_budget;
pub mod tools;
