//! The global table: every top-level name of a session, interned to an index once, so
//! that every tier reads a global with one indexed load. Builtins are globals too, defined
//! before the program starts; a program may redefine them.

use std::collections::HashMap;
use std::rc::Rc;

use crate::builtins::Builtin;
use crate::syntax::ast::Name;
use crate::value::Value;

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
        self.values[id as usize] = Some(value);
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
