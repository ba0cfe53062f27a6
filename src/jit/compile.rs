//! Compiling one function for one signature: its environment and types, the callees to
//! inline, the translation to Cranelift IR and the machine code; and the module the code
//! lives in, with the runtime helpers declared in it.

use super::*;

impl Jit {
    pub(super) fn environment<'a>(
        &self,
        closure: &'a Rc<Closure>,
        proto: &'a Proto,
        key: SigKey,
        globals: &Globals,
    ) -> Env<'a> {
        let params: Vec<Ty> = signature_types(key).into_iter().map(Ty::of_type).collect();
        let mut global_types = HashMap::new();
        let mut callees = HashMap::new();
        for (pc, op) in proto.code.iter().enumerate() {
            match *op {
                Op::GetGlobal { global, .. } if self.globals_in_place => {
                    let ty = match globals.get(global) {
                        Some(Value::Int(_)) => Ty::Int,
                        Some(Value::Float(_)) => Ty::Float,
                        Some(Value::Bool(_)) => Ty::Bool,
                        _ => continue,
                    };
                    global_types.insert(global, ty);
                }
                Op::CallGlobal { global, argc, .. } => {
                    let Some(Value::Func(c)) = globals.get(global) else {
                        continue;
                    };
                    let Code::Bytecode(p) = &c.code else {
                        continue;
                    };
                    let n = argc as usize;
                    if unsupported(p).is_none()
                        && n >= p.min_args
                        && n <= p.max_args
                        && !p.jit.blacklisted.get()
                    {
                        callees.insert(
                            pc,
                            Callee {
                                closure: c.clone(),
                                proto: p.clone(),
                                hints: Default::default(),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        Env {
            proto,
            closure,
            key,
            argc: params.len(),
            params,
            feedback: proto.counters.feedback.iter().map(Cell::get).collect(),
            global_types,
            globals_in_place: self.globals_in_place,
            callees,
            self_result: Ty::Dead,
            osr: None,
            range_guards: !proto.jit.no_range_guards.get(),
        }
    }

    /// Infers types, first guessing what a self-call returns from the other returns, then
    /// checking the guess (falling back to "any").
    fn infer(env: &mut Env, live: &Liveness) -> Types {
        let first = infer::infer(env, live);
        let guess = first.returns;
        if !guess.is_unboxed() {
            env.self_result = Ty::Boxed;
            return infer::infer(env, live);
        }
        env.self_result = guess;
        let second = infer::infer(env, live);
        if second.returns == guess {
            return second;
        }
        env.self_result = Ty::Boxed;
        infer::infer(env, live)
    }

    /// What `callee` returns for signature `key`, by inferring its types (its own callees
    /// count as returning anything, unless compiled). Only a hint: the call checks it.
    fn callee_result(&self, callee: &Callee, key: SigKey, globals: &Globals) -> Ty {
        if unsupported(&callee.proto).is_some() {
            return Ty::Boxed;
        }
        let mut env = self.environment(&callee.closure, &callee.proto, key, globals);
        env.callees.clear();
        let live = Liveness::compute(&callee.proto, env.argc);
        match Self::infer(&mut env, &live).returns {
            Ty::Dead => Ty::Boxed,
            t => t,
        }
    }

    /// The call sites of `env`'s function whose callee is translated inline: a small
    /// function without loops or calls of its own (so inlining never nests and the
    /// callee's frame is the only one a deopt inside it must hand to the VM), and not the
    /// function itself (self-recursion is unrolled at tier 2 instead).
    fn inline_targets(&self, env: &Env, types: &Types) -> Vec<InlineTarget> {
        let mut targets = Vec::new();
        for (pc, key) in table_calls(env, types) {
            let callee = &env.callees[&pc];
            let proto = &callee.proto;
            let small = proto.code.len() <= INLINE_MAX_OPS
                && callee.closure.captures.is_empty()
                && !proto.jit.blacklisted.get()
                && !Rc::ptr_eq(&callee.closure, env.closure)
                && !proto.code.iter().any(|op| {
                    matches!(
                        op,
                        Op::LoopEnter { .. } | Op::CallGlobal { .. } | Op::Call { .. }
                    )
                });
            if small {
                targets.push(InlineTarget {
                    pc,
                    key,
                    closure: callee.closure.clone(),
                    proto: proto.clone(),
                });
            }
        }
        targets
    }

    /// The analysis of a callee to translate inline, or `None` if it makes calls after all
    /// (a method call, say, that infers as a fast call).
    fn inline_analysis<'a>(
        &self,
        target: &'a InlineTarget,
        globals: &Globals,
    ) -> Option<Analysis<'a>> {
        let mut env = self.environment(&target.closure, &target.proto, target.key, globals);
        let live = Liveness::compute(&target.proto, env.argc);
        let types = Self::infer(&mut env, &live);
        let calls = types.states.iter().enumerate().any(|(pc, state)| {
            state
                .as_ref()
                .is_some_and(|st| matches!(env.decide(pc, st).0, Plan::FastCall { .. }))
        });
        (!calls).then(|| Analysis::new(env, types, live, HashMap::new()))
    }

    /// `compile_proto`, with a panic inside it (a bug of the translator, or invalid IR
    /// that Cranelift rejects by panicking when its verifier is off) turned into a failed
    /// compile: the function stays in the VM, and the process goes on. The contexts the
    /// compile was using start afresh.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compile_guarded(
        &mut self,
        closure: &Rc<Closure>,
        proto: &Proto,
        key: SigKey,
        globals: &Globals,
        osr: Option<(usize, Vec<Ty>)>,
        tier: u8,
    ) -> Result<(Rc<CodeEntry>, usize), String> {
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.compile_proto(closure, proto, key, globals, osr, tier)
        }));
        attempt.unwrap_or_else(|panic| {
            self.module.clear_context(&mut self.ctx);
            self.builder_ctx = FunctionBuilderContext::new();
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!(
                "internal error in the JIT (please report it): {what}"
            ))
        })
    }

    pub(super) fn compile_proto(
        &mut self,
        closure: &Rc<Closure>,
        proto: &Proto,
        key: SigKey,
        globals: &Globals,
        osr: Option<(usize, Vec<Ty>)>,
        tier: u8,
    ) -> Result<(Rc<CodeEntry>, usize), String> {
        let started = Instant::now();
        if let Some(reason) = unsupported(proto) {
            return Err(reason);
        }
        let mut env = self.environment(closure, proto, key, globals);
        let osr_header = osr.as_ref().map(|o| o.0);
        if osr.is_some() {
            // Not the function's normal entry: its self-calls go through the code table.
            env.key = 0;
            env.osr = osr;
        }
        if env.argc < proto.min_args || env.argc > proto.max_args {
            return Err("wrong number of arguments".into());
        }
        let live = Liveness::compute(proto, env.argc);
        let mut types = Self::infer(&mut env, &live);
        // Callees not compiled yet: infer what they return for the signatures called with,
        // then infer again with those results (a few rounds, as results type more calls).
        for _ in 0..3 {
            let mut learned = false;
            for (pc, key) in table_calls(&env, &types) {
                let callee = &env.callees[&pc];
                if callee.proto.jit.return_type(key).is_some()
                    || callee.hints.borrow().contains_key(&key)
                {
                    continue;
                }
                let t = self.callee_result(callee, key, globals);
                callee.hints.borrow_mut().insert(key, t);
                learned |= t != Ty::Boxed;
            }
            if !learned {
                break;
            }
            env.self_result = Ty::Dead;
            types = Self::infer(&mut env, &live);
        }

        // Tier 2 unrolls self-recursion; a function without direct self-calls gains
        // nothing from it and stays at tier 1. Tier-1 code of one that has them counts its
        // calls, to move to tier 2 when hot.
        let self_calls = types.states.iter().enumerate().any(|(pc, state)| {
            state.as_ref().is_some_and(|st| {
                matches!(env.decide(pc, st).0, Plan::FastCall { direct: true, .. })
            })
        });
        let tier = if tier == 2 && self_calls { 2 } else { 1 };
        let counts = tier == 1
            && self_calls
            && osr_header.is_none()
            && (1..u64::MAX).contains(&self.options.tier2_threshold);
        let tier_up = counts.then(|| crate::vm::proto_of(closure).jit.tier_up(key, closure));

        let call_conv = self.module.isa().default_call_conv();
        let mut entry_sig = Signature::new(call_conv);
        entry_sig.params = (0..4).map(|_| AbiParam::new(I64)).collect();
        entry_sig.returns = (0..2).map(|_| AbiParam::new(I64)).collect();
        let body_sig = match osr_header {
            Some(_) => entry_sig.clone(),
            None => body_signature(&env.params, call_conv),
        };
        let body_id = self
            .module
            .declare_anonymous_function(&body_sig)
            .map_err(|e| e.to_string())?;
        // The entry from Rust (an OSR variant is called from Rust directly).
        let entry_id = match osr_header {
            Some(_) => None,
            None => Some(
                self.module
                    .declare_anonymous_function(&entry_sig)
                    .map_err(|e| e.to_string())?,
            ),
        };

        // Small leaf callees are translated into the caller (`inline_targets`).
        let inline_targets = self.inline_targets(&env, &types);
        let mut analyses = Vec::with_capacity(1 + inline_targets.len());
        let returns = types.returns;
        let param_types = env.params.clone();
        analyses.push(Analysis::new(env, types, live, HashMap::new()));
        if tier == 2 && !proto.jit.no_accumulator.get() {
            let (env, types) = (&analyses[0].env, &analyses[0].types);
            let accumulated = translate::accumulated_calls(env, types);
            let measure = if accumulated.is_empty() {
                None
            } else {
                translate::depth_measure(env, types)
            };
            let threaded = translate::threaded_terms(env, types, &accumulated);
            analyses[0].accumulated = accumulated;
            analyses[0].measure = measure;
            analyses[0].threaded = threaded;
        }
        for target in &inline_targets {
            let callee = self.inline_analysis(target, globals);
            if let Some(callee) = callee {
                let index = analyses.len();
                analyses[0].inline.insert(target.pc, index);
                analyses.push(callee);
            }
        }

        let settings = Settings {
            max_depth: self.max_depth,
            interrupt_flag: Arc::as_ptr(&self.interrupt) as usize,
            epoch: crate::globals::function_epoch(),
            epoch_addr: &crate::globals::FUNCTION_EPOCH as *const _ as usize,
            deopt_stress: self.options.deopt_stress,
            array: self.array_layout,
            inline_depth: if tier == 2 {
                let sites = self_call_sites(&analyses[0].env, &analyses[0].types);
                let accumulated = analyses[0].accumulated.len();
                unroll_depth(sites - accumulated, accumulated > 0)
            } else {
                0
            },
            tier_up: tier_up.as_ref().map(|t| {
                (
                    Rc::as_ptr(t) as usize,
                    self.options.tier2_threshold.min(i64::MAX as u64) as i64,
                )
            }),
        };
        // The code may hand its own closure to the VM (see `Translator::new`).
        let mut keep_closures = vec![closure.clone()];
        let mut keep_slots = Vec::new();

        // The body.
        let inlined;
        let peeled;
        let accumulated;
        let inlined_callees;
        let exits;
        let layout_counts;
        let range_counts;
        let array_counts;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = body_sig.clone();
        self.ctx.func.name = UserFuncName::user(0, body_id.as_u32());
        self.ctx.set_disasm(self.options.keep_ir);
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
            let refs: Vec<_> = self
                .helper_ids
                .iter()
                .map(|id| self.module.declare_func_in_func(*id, b.func))
                .collect();
            let helpers = HelperRefs {
                step: refs[0],
                resume: refs[1],
                drop_slot: refs[2],
                return_boxed: refs[3],
                clear: refs[4],
                binary: refs[5],
                get_index: refs[6],
                set_index: refs[7],
                push: refs[8],
                copy: refs[9],
                tier_up: refs[10],
            };
            let mut calls = HashMap::new();
            let (env, types) = (&analyses[0].env, &analyses[0].types);
            for (pc, state) in types.states.iter().enumerate() {
                let Some(state) = state else { continue };
                let (Plan::FastCall { key, direct, .. }, _) = env.decide(pc, state) else {
                    continue;
                };
                let callee = &env.callees[&pc];
                let target = if direct {
                    CallTarget::Direct(self.module.declare_func_in_func(body_id, b.func))
                } else {
                    let slot = callee.proto.jit.slot(key);
                    let params: Vec<Ty> =
                        signature_types(key).into_iter().map(Ty::of_type).collect();
                    let sig = b.import_signature(body_signature(&params, call_conv));
                    let address = Rc::as_ptr(&slot) as usize;
                    keep_slots.push(slot);
                    CallTarget::Slot { slot: address, sig }
                };
                keep_closures.push(callee.closure.clone());
                calls.insert(
                    pc,
                    FastCallSite {
                        target,
                        closure: Rc::as_ptr(&callee.closure) as usize,
                        callee_regs: callee.proto.num_regs,
                    },
                );
            }
            analyses[0].calls = calls;
            let ranges = &analyses[0].ranges;
            range_counts = (
                ranges.unchecked.len(),
                ranges.guards.len(),
                ranges.outside_loops,
            );
            let mut t = Translator::new(b, &analyses, helpers, &settings);
            match osr_header {
                Some(header) => t.entry_osr(header),
                None => t.entry(&param_types),
            }
            t.body();
            inlined = t.inlined;
            peeled = t.peeled;
            accumulated = t.accumulated;
            array_counts = (t.hoisted_array_accesses, t.hoisted_arrays);
            layout_counts = (t.rotated_loops, t.if_converted);
            inlined_callees = std::mem::take(&mut t.inlined_callees);
            exits = std::mem::take(&mut t.exits);
            t.finish(self.module.target_config());
        }
        let result = self.module.define_function(body_id, &mut self.ctx);
        if let Err(e) = result {
            let text = format!("{e:?}");
            self.module.clear_context(&mut self.ctx);
            return Err(format!("code generation failed: {text}"));
        }
        let code_bytes = self
            .ctx
            .compiled_code()
            .map_or(0, |c| c.code_info().total_size as usize);
        let ir = self
            .options
            .keep_ir
            .then(|| self.ctx.func.display().to_string());
        let machine_code = self
            .ctx
            .compiled_code()
            .and_then(|c| c.vcode.clone())
            .filter(|_| self.options.keep_ir);

        // The entry from Rust: loads the unboxed arguments from the registers.
        if let Some(entry_id) = entry_id {
            self.module.clear_context(&mut self.ctx);
            self.ctx.func.signature = entry_sig;
            self.ctx.func.name = UserFuncName::user(0, entry_id.as_u32());
            {
                let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
                let block = b.create_block();
                b.append_block_params_for_function_params(block);
                b.switch_to_block(block);
                let params = b.block_params(block).to_vec();
                let mut args = params.clone();
                for (i, ty) in param_types.iter().enumerate() {
                    if ty.is_unboxed() {
                        let v = b.ins().load(
                            translate::cl_type(*ty),
                            MemFlagsData::trusted(),
                            params[2],
                            i as i32 * 16 + 8,
                        );
                        args.push(v);
                    }
                }
                let body = self.module.declare_func_in_func(body_id, b.func);
                let call = b.ins().call(body, &args);
                let results = b.inst_results(call).to_vec();
                b.ins().return_(&results);
                b.seal_all_blocks();
                b.finalize(self.module.target_config());
            }
            if let Err(e) = self.module.define_function(entry_id, &mut self.ctx) {
                self.module.clear_context(&mut self.ctx);
                return Err(format!("code generation failed: {e:?}"));
            }
        }
        self.module.clear_context(&mut self.ctx);
        self.module
            .finalize_definitions()
            .map_err(|e| format!("finalizing: {e}"))?;
        let body = self.module.get_finalized_function(body_id) as usize;
        let entry = entry_id.map_or(body, |id| self.module.get_finalized_function(id) as usize);
        let code = CodeEntry {
            key,
            entry,
            returns,
            signature: signature_text(key),
            ir,
            machine_code,
            code_bytes,
            compile_time: started.elapsed(),
            osr_line: osr_header.map(|h| proto.lines[h]),
            tier,
            unrolled_levels: settings.inline_depth,
            inlined,
            peeled,
            accumulated_lines: analyses[0]
                .accumulated
                .iter()
                .map(|&pc| proto.lines[pc])
                .collect(),
            accumulated,
            depth_measure: analyses[0].measure.map(|(p, k)| (p as usize + 1, k)),
            inlined_callees,
            checks_removed: range_counts.0,
            guarded_loops: range_counts.1,
            checks_removed_outside_loops: range_counts.2,
            hoisted_array_accesses: array_counts.0,
            hoisted_arrays: array_counts.1,
            rotated_loops: layout_counts.0,
            if_converted: layout_counts.1,
            _keep: code::Kept {
                closures: keep_closures,
                slots: keep_slots,
                tier_up,
                exits,
            },
        };
        Ok((Rc::new(code), body))
    }
}

/// The fast calls of another function (through the code table): (pc, the callee's
/// signature).
/// How many direct self-call sites the function has (tier 2 unrolls those).
fn self_call_sites(env: &Env, types: &Types) -> usize {
    types
        .states
        .iter()
        .enumerate()
        .filter_map(|(pc, state)| Some(env.decide(pc, state.as_ref()?).0))
        .filter(|plan| matches!(plan, Plan::FastCall { direct: true, .. }))
        .count()
}

fn table_calls(env: &Env, types: &Types) -> Vec<(usize, SigKey)> {
    let mut calls = Vec::new();
    for (pc, state) in types.states.iter().enumerate() {
        let Some(state) = state else { continue };
        if let (
            Plan::FastCall {
                key, direct: false, ..
            },
            _,
        ) = env.decide(pc, state)
        {
            calls.push((pc, key));
        }
    }
    calls
}

/// A callee to translate inline at call site `pc`, called with signature `key`.
struct InlineTarget {
    pc: usize,
    key: SigKey,
    closure: Rc<Closure>,
    proto: Rc<Proto>,
}

/// A fresh `JITModule` for this machine, with the runtime helpers declared in it.
pub(super) fn build_module() -> Result<(JITModule, [FuncId; HELPERS]), String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v)
            .map_err(|e| format!("cranelift setting {k}: {e}"))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("this machine is not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift: {e}"))?;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    for (name, address) in runtime::helper_symbols() {
        jb.symbol(name, address);
    }
    let mut module = JITModule::new(jb);
    let ptr = |n: usize| (0..n).map(|_| AbiParam::new(I64)).collect::<Vec<_>>();
    let sig = |module: &JITModule, params: usize, returns: usize| {
        let mut s = module.make_signature();
        s.params = ptr(params);
        s.returns = ptr(returns);
        s
    };
    let decls: [(&str, usize, usize); HELPERS] = [
        ("rt_step", 5, 1),
        ("rt_resume", 6, 2),
        ("rt_drop", 1, 0),
        ("rt_return_boxed", 3, 2),
        ("rt_clear", 2, 0),
        ("rt_binary", 5, 1),
        ("rt_get_index", 4, 1),
        ("rt_set_index", 5, 1),
        ("rt_push", 5, 1),
        ("rt_copy", 3, 0),
        ("rt_tier_up", 2, 1),
    ];
    let mut ids = Vec::new();
    for (name, params, returns) in decls {
        let s = sig(&module, params, returns);
        let id = module
            .declare_function(name, Linkage::Import, &s)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        ids.push(id);
    }
    let ids = ids.try_into().expect("one id per helper");
    Ok((module, ids))
}
