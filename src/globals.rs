//! The global table: every top-level name of a session, interned to an index once, so
//! that every tier reads a global with one indexed load. Builtins are globals too, defined
//! before the program starts; a program may redefine them.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::builtins::Builtin;
use crate::syntax::ast::Name;
use crate::value::Value;

/// Bumped whenever a global that held a function is overwritten, and with the top bit
/// (`INTERRUPT_PENDING`) set while an interrupt is pending. Compiled code calls a global's
/// function directly only while this word is what it was at compile time, so a
/// redefinition or an interrupt sends every such call back through the VM, which does
/// the right thing. One load and compare per call covers both. (Process-wide: another
/// session's redefinitions and interrupts only cost a trip through the VM.)
pub static FUNCTION_EPOCH: AtomicU64 = AtomicU64::new(0);

pub const INTERRUPT_PENDING: u64 = 1 << 63;

/// The epoch compiled code expects (without the interrupt bit).
pub fn function_epoch() -> u64 {
    FUNCTION_EPOCH.load(Ordering::Relaxed) & !INTERRUPT_PENDING
}

pub struct Globals {
    ids: HashMap<Name, u32>,
    names: Vec<Name>,
    /// `None` until defined: reading it is `Undefined variable: NAME`.
    values: Vec<Option<Value>>,
}

impl Default for Globals {
    fn default() -> Self {
        Self::new()
    }
}

impl Globals {
    pub fn new() -> Globals {
        let mut g = Globals {
            ids: HashMap::new(),
            names: Vec::new(),
            values: Vec::new(),
        };
        for b in Builtin::ALL {
            let id = g.intern(b.name());
            g.values[id as usize] = Some(Value::Builtin(*b));
        }
        g
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let name: Name = Rc::from(name);
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        self.values.push(None);
        id
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &Name {
        &self.names[id as usize]
    }

    #[inline]
    pub fn get(&self, id: u32) -> Option<&Value> {
        self.values[id as usize].as_ref()
    }

    #[inline]
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Value> {
        self.values[id as usize].as_mut()
    }

    #[inline]
    pub fn set(&mut self, id: u32, value: Value) {
        let old = self.values[id as usize].replace(value);
        if let Some(Value::Func(_)) = old {
            FUNCTION_EPOCH.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Where the values are (compiled code reads a global at `address + 16 * id`; see
    /// `layout_is_value`).
    pub fn values_address(&self) -> usize {
        self.values.as_ptr() as usize
    }

    /// Whether a defined global's slot holds exactly its `Value`'s bytes (true when
    /// `Option<Value>` uses a niche of the tag), which compiled code needs to read globals
    /// in place. Checked at run time rather than assumed.
    pub fn layout_is_value() -> bool {
        if std::mem::size_of::<Option<Value>>() != std::mem::size_of::<Value>() {
            return false;
        }
        // Same size means `None` is a niche of the tag, so a `Some` is its `Value`; check
        // that the payload sits where a `Value`'s does.
        let probe = Some(Value::Int(0x5eed));
        let Some(Value::Int(payload)) = &probe else {
            return false;
        };
        payload as *const i64 as usize == &probe as *const Option<Value> as usize + 8
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Names that currently hold a value (builtins included).
    pub fn defined_names(&self) -> impl Iterator<Item = Name> + '_ {
        self.names
            .iter()
            .zip(&self.values)
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.clone())
    }
}
