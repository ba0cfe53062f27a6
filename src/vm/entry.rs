//! Entering the VM from outside: building a `Vm`, running a script or calling a function
//! value, and unwinding after an error. The dispatch loop itself is in `mod.rs`.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use super::{proto_of, Frame, Vm, REG_WINDOW, VALUE_BYTES};
use crate::bytecode::proto::Proto;
use crate::error::{Error, ErrorKind};
use crate::function::{Closure, Code};
use crate::globals::Globals;
use crate::jit::runtime::JitCtx;
use crate::jit::Jit;
use crate::limits::Limits;
use crate::value::{clear, Value};

impl<'a> Vm<'a> {
    /// A VM on `stack` (made by `vm::new_stack`; nil past what earlier VMs on it used).
    pub fn new(
        globals: &'a mut Globals,
        out: &'a mut dyn Write,
        limits: &'a Limits,
        stack: &'a mut crate::alloc::RegisterStack,
    ) -> Self {
        Vm {
            globals,
            out,
            limits,
            stack,
            used_end: 0,
            frames: Vec::new(),
            depth: 0,
            cells: Vec::new(),
            counting: true,
            timing: None,
            jit: None,
            osr_threshold: 0,
            level_offset: 0,
            pending_error: None,
            jit_ctx: JitCtx::default(),
        }
    }

    /// Lets compiled code run: `jit` compiles and holds the code (one per session).
    pub fn set_jit(&mut self, jit: &'a mut Jit) {
        self.jit_ctx.stress_every = jit.options.deopt_stress as i64;
        self.jit_ctx.stress_left = jit.options.deopt_stress as i64;
        self.osr_threshold = jit.options.osr_threshold;
        jit.vm_attached = true;
        self.jit = Some(jit);
    }

    /// Makes the used part of the register stack at least `needed` values long, with
    /// `REG_WINDOW` initialized values after it. It never grows past its reserved capacity,
    /// so it never moves: a deeper program gets the recursion error.
    pub(crate) fn grow_stack(&mut self, needed: usize) -> Result<(), ErrorKind> {
        if needed <= self.used_end {
            return Ok(());
        }
        let initialized = needed + REG_WINDOW;
        if initialized > self.stack.capacity() {
            return Err(ErrorKind::RecursionLimit);
        }
        if initialized > self.stack.len() {
            self.stack.grow_to(initialized);
        }
        self.used_end = needed;
        self.sync_stack_end();
        Ok(())
    }

    /// Tells compiled code where the used part of the register stack ends: a window past
    /// it is made by `grow_stack` (compiled code calls the VM for that).
    pub(crate) fn sync_stack_end(&mut self) {
        self.jit_ctx.stack_end = self.stack.as_ptr() as usize + self.used_end * VALUE_BYTES;
    }

    /// Runs one frame of `closure` whose registers start at `base` (a frame compiled code
    /// was running) from `pc`: to its return, or with `step` just the instruction at `pc`
    /// (then the result is the next pc). `level` is the frame's call depth.
    pub(crate) fn run_frame_from(
        &mut self,
        closure: Rc<Closure>,
        base: usize,
        argc: usize,
        pc: usize,
        level: usize,
        step: bool,
    ) -> Result<Value, Error> {
        let saved_offset = self.level_offset;
        self.level_offset = level.saturating_sub(self.depth);
        let entry_depth = self.depth;
        let entry_cells = self.cells.len();
        let cell_base = entry_cells;
        let result = self.execute_configured(step, entry_depth, closure, base, cell_base, argc, pc);
        if result.is_err() {
            self.unwind(entry_depth, entry_cells);
        }
        self.level_offset = saved_offset;
        result
    }

    /// Runs `execute` compiled for what this VM records: the profile counters (unless
    /// switched off), and the type feedback of each instruction, which only the JIT reads:
    /// without one (`--tier vm`) it is not recorded, which saves about 10% of the VM's time
    /// on fib, loop and tak.
    /// Compiled code only asks a VM with a JIT to `step`.
    #[allow(clippy::too_many_arguments)]
    fn execute_configured(
        &mut self,
        step: bool,
        entry_depth: usize,
        closure: Rc<Closure>,
        base: usize,
        cell_base: usize,
        argc: usize,
        pc: usize,
    ) -> Result<Value, Error> {
        let (d, c, b, cb, a) = (entry_depth, closure, base, cell_base, argc);
        match (self.counting, self.jit.is_some(), step) {
            (true, true, false) => self.execute::<true, true, false>(d, c, b, cb, a, pc),
            (true, false, false) => self.execute::<true, false, false>(d, c, b, cb, a, pc),
            (false, _, false) => self.execute::<false, false, false>(d, c, b, cb, a, pc),
            (true, _, true) => self.execute::<true, true, true>(d, c, b, cb, a, pc),
            (false, _, true) => self.execute::<false, false, true>(d, c, b, cb, a, pc),
        }
    }

    /// Drops every frame suspended above `entry_depth` after an error.
    fn unwind(&mut self, entry_depth: usize, entry_cells: usize) {
        for f in &mut self.frames[entry_depth..self.depth] {
            f.closure = None;
        }
        self.depth = entry_depth;
        self.cells.truncate(entry_cells);
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
        let base = self.used_end + 1;
        self.grow_stack(base + proto.num_regs as usize)
            .map_err(|k| Error::new(k, span))?;
        for (slot, arg) in self.stack[base..].iter_mut().zip(args) {
            *slot = arg;
        }
        let entry_depth = self.depth;
        let entry_cells = self.cells.len();
        let cell_base = self.push_cells(proto.num_cells);
        if self.counting {
            proto.counters.record_call(&self.stack[base..base + argc]);
        }
        if let Some(t) = &mut self.timing {
            t.enter(&proto);
        }
        let result = match self.compiled_entry(&closure, base, argc) {
            Some(code) => {
                // This frame's depth: the same as when the VM runs it.
                let level = self.depth + self.level_offset;
                self.call_compiled(code, &closure, base, level)
            }
            None => self.execute_configured(false, entry_depth, closure, base, cell_base, argc, 0),
        };
        if let Some(t) = &mut self.timing {
            match result {
                Ok(_) => t.leave(entry_depth),
                Err(_) => t.abandon(),
            }
        }
        if result.is_err() {
            self.unwind(entry_depth, entry_cells);
        }
        // Release what this entry's frames left in their registers (after an error, or
        // in frames that never clear theirs): the stack past `used_end` stays nil.
        self.stack[base - 1..self.used_end]
            .iter_mut()
            .for_each(clear);
        self.used_end = base - 1;
        self.sync_stack_end();
        result
    }
}

impl Drop for Vm<'_> {
    fn drop(&mut self) {
        // Compiled frames can only run while a VM holds the JIT: from now on its code may
        // be freed (see `Jit::flush_code_cache`).
        if let Some(jit) = self.jit.as_mut() {
            jit.vm_attached = false;
        }
    }
}
