//! Entering the VM from outside: building a `Vm`, running a script or calling a function
//! value, and unwinding after an error. The dispatch loop itself is in `mod.rs`.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use super::{proto_of, Frame, Vm};
use crate::bytecode::proto::Proto;
use crate::error::{Error, ErrorKind};
use crate::function::{Closure, Code};
use crate::globals::Globals;
use crate::limits::Limits;
use crate::value::Value;

impl<'a> Vm<'a> {
    pub fn new(globals: &'a mut Globals, out: &'a mut dyn Write, limits: &'a Limits) -> Self {
        Vm {
            globals,
            out,
            limits,
            stack: Vec::new(),
            frames: Vec::new(),
            depth: 0,
            cells: Vec::new(),
            counting: true,
            timing: None,
        }
    }

    /// Switches the profile counters off (to measure what they cost) or on.
    pub fn set_counting(&mut self, on: bool) {
        self.counting = on;
    }

    /// Switches timing on (implies counting) or off.
    pub fn set_timing(&mut self, on: bool) {
        self.timing = on.then(Box::default);
        if on {
            self.counting = true;
        }
    }

    /// Reserves a frame's cells (each `let` of a captured variable makes its own fresh cell;
    /// until then they share one placeholder); returns where they start.
    #[inline(always)]
    pub(super) fn push_cells(&mut self, n: u16) -> usize {
        let cell_base = self.cells.len();
        if n > 0 {
            let placeholder = Rc::new(RefCell::new(Value::Nil));
            self.cells.extend((0..n).map(|_| placeholder.clone()));
        }
        cell_base
    }

    /// Saves the running frame's state while it calls. One argument per field: writing
    /// them into the reused slot is cheaper than building a `Frame` and copying it.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn suspend(
        &mut self,
        closure: Rc<Closure>,
        pc: usize,
        base: usize,
        cell_base: usize,
        argc: usize,
        ret: usize,
        heap: bool,
    ) {
        if self.depth == self.frames.len() {
            self.frames.push(Frame {
                closure: None,
                pc: 0,
                base: 0,
                cell_base: 0,
                argc: 0,
                ret: 0,
                heap: false,
            });
        }
        let f = &mut self.frames[self.depth];
        f.closure = Some(closure);
        f.pc = pc;
        f.base = base;
        f.cell_base = cell_base;
        f.argc = argc;
        f.ret = ret;
        f.heap = heap;
        self.depth += 1;
    }

    /// Runs a compiled script; returns its value.
    pub fn run_script(&mut self, script: &Rc<Proto>) -> Result<Value, Error> {
        let closure = Rc::new(Closure {
            code: Code::Bytecode(script.clone()),
            captures: Box::new([]),
        });
        self.call_closure(
            closure,
            Vec::new(),
            script.spans.last().copied().unwrap_or_default(),
        )
    }

    /// Calls a function value with arguments from outside the VM (`main()` after a script).
    pub fn call_value(
        &mut self,
        f: &Value,
        args: Vec<Value>,
        span: crate::syntax::source::Span,
    ) -> Result<Value, Error> {
        match f {
            Value::Func(c) => self.call_closure(c.clone(), args, span),
            Value::Builtin(b) => b.call(&args, self.out).map_err(|k| Error::new(k, span)),
            other => Err(Error::new(ErrorKind::NotCallable(other.type_of()), span)),
        }
    }

    pub(super) fn call_closure(
        &mut self,
        closure: Rc<Closure>,
        args: Vec<Value>,
        span: crate::syntax::source::Span,
    ) -> Result<Value, Error> {
        let proto = proto_of(&closure).clone();
        let argc = args.len();
        if argc < proto.min_args || argc > proto.max_args {
            let (min, max) = (proto.min_args, proto.max_args);
            return Err(Error::new(
                ErrorKind::Arity {
                    min,
                    max,
                    got: argc,
                },
                span,
            ));
        }
        let base = self.stack.len() + 1;
        self.stack.push(Value::Nil);
        self.stack.extend(args);
        self.stack
            .resize(base + proto.num_regs as usize, Value::Nil);
        let entry_depth = self.depth;
        let entry_cells = self.cells.len();
        let cell_base = self.push_cells(proto.num_cells);
        if self.counting {
            proto.counters.record_call(&self.stack[base..base + argc]);
        }
        if let Some(t) = &mut self.timing {
            t.enter(&proto);
        }
        let result = if self.counting {
            self.execute::<true>(entry_depth, closure, base, cell_base, argc)
        } else {
            self.execute::<false>(entry_depth, closure, base, cell_base, argc)
        };
        if let Some(t) = &mut self.timing {
            match result {
                Ok(_) => t.leave(entry_depth),
                Err(_) => t.abandon(),
            }
        }
        if result.is_err() {
            // Unwind everything this run suspended.
            for f in &mut self.frames[entry_depth..self.depth] {
                f.closure = None;
            }
            self.depth = entry_depth;
            self.cells.truncate(entry_cells);
        }
        self.stack.truncate(base - 1);
        result
    }
}
