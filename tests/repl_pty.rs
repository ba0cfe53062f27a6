//! The REPL through a real pseudo-terminal: multi-line input, history recall, completion,
//! Ctrl-C out of an endless loop running in compiled code, and the session intact after.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

struct Terminal {
    input: std::fs::File,
    screen: Arc<Mutex<String>>,
    child: std::process::Child,
}

impl Terminal {
    fn start() -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
        let home = std::env::temp_dir().join(format!("ruchy-pty-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("home");
        let slave = pty.slave;
        let child = Command::new(env!("CARGO_BIN_EXE_ruchy"))
            .arg("repl")
            .env("HOME", &home)
            .env("NO_COLOR", "1")
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().expect("fd")))
            .stdout(Stdio::from(slave.try_clone().expect("fd")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("start the REPL");
        let master = std::fs::File::from(pty.master);
        let mut output = master.try_clone().expect("fd");
        let screen = Arc::new(Mutex::new(String::new()));
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shared
                    .lock()
                    .expect("screen")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            input: master,
            screen,
            child,
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("type");
    }

    fn prompts(&self) -> usize {
        let screen = self.screen.lock().expect("screen");
        screen.matches("ruchy> ").count() + screen.matches("...    ").count()
    }

    /// Types one line and waits for the next prompt (rustyline drops keys typed ahead
    /// while it switches the terminal's mode).
    fn line(&mut self, text: &str) {
        let before = self.prompts();
        self.type_keys(&format!("{text}\r"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.prompts() <= before {
            assert!(Instant::now() < deadline, "no prompt after {text:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `text` has appeared `times` times on the screen.
    fn expect(&self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen.lock().expect("screen").clone();
            if screen.matches(text).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} x{times}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn multi_line_history_completion_and_ctrl_c_out_of_compiled_code() {
    let mut t = Terminal::start();
    t.expect("ruchy> ", 1);
    // An unfinished definition waits for more lines.
    t.type_keys("fun spin(n) { let mut i = 0\r");
    t.expect("...    ", 1);
    t.type_keys("while true { i = i + 1 } }\r");
    t.expect("<function>", 1);
    // An endless loop: it moves to compiled code (OSR), then Ctrl-C stops it.
    t.type_keys("spin(1)\r");
    t.expect("OSR into spin", 1);
    std::thread::sleep(Duration::from_millis(200));
    kill(Pid::from_raw(t.child.id() as i32), Signal::SIGINT).expect("send Ctrl-C");
    t.expect("Interrupted", 1);
    // The session is intact: earlier definitions are still there.
    t.type_keys("spin\r");
    t.expect("<function>", 2);
    t.type_keys("40 + 2\r");
    t.expect("42", 1);
    // History: the up arrow recalls the last input.
    t.type_keys("\x1b[A\r");
    t.expect("42", 2);
    // An endless loop that stays in the VM (a function whose variable a closure captures is
    // not compiled): Ctrl-C stops it too.
    t.line("fun stuck() { let mut x = 0");
    t.line("let peek = fun() { x }");
    t.line("loop { x = x + 1 } }");
    t.expect("<function>", 3);
    t.type_keys("stuck()\r");
    std::thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(t.child.id() as i32), Signal::SIGINT).expect("send Ctrl-C");
    t.expect("Interrupted", 2);
    // A function heats up over several inputs and shows as compiled.
    t.line("fun fib(n) { if n < 2 { return n } fib(n - 1) + fib(n - 2) }");
    t.line("fib(10)");
    t.expect("55", 1);
    t.line("fib(18)");
    t.expect("2584", 1);
    t.line(":profile");
    t.expect("jit (int)", 1);
    // :bytecode and :ir of two functions differ.
    t.line(":bytecode fib");
    t.expect("function fib (1 param", 1);
    t.line(":bytecode stuck");
    t.expect("function stuck (0 params", 1);
    t.line(":ir fib");
    t.expect("; fib(int) compiled in", 1);
    t.line(":ir stuck");
    t.expect("captured by closures", 1);
    // A type change inside a callee inlined into a loop compiled by OSR: :deopts names
    // the function, the line and the reason.
    t.line("let mut k = 2");
    t.line("fun scaled(v) { v * k }");
    t.line("fun sum(n) { let mut s = 0");
    t.line("for i in 0..n { if i == 2000 { k = 0.5 }");
    t.line("s = s + scaled(i) }");
    t.line("s }");
    t.line("sum(3000)");
    t.expect("inlined scaled (line 3)", 1);
    t.expect("5247750.0", 1);
    t.line(":deopts");
    t.expect("deopt scaled at line 1: expected int, got float", 2);
    // Tab completes meta-commands and the session's names.
    t.type_keys(":hel\t\r");
    t.expect("this list", 1);
    let functions = t
        .screen
        .lock()
        .expect("screen")
        .matches("<function>")
        .count();
    t.type_keys("spi\t\r");
    t.expect("<function>", functions + 1);
    // Ctrl-D leaves.
    t.type_keys("\x04");
    let status = t.child.wait().expect("the REPL ends");
    assert!(status.success());
}
