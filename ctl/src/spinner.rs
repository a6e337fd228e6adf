//! A spinner on standard error while a command waits (for an authorization, for events), so an
//! operator sees it is alive. Only on a terminal: piped or redirected output never gets frames.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::{Arc, Mutex},
    time::Duration,
};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A running spinner; dropping it stops it and clears its line.
#[derive(Debug)]
pub(crate) struct Spinner {
    task: Option<tokio::task::JoinHandle<()>>,
    /// Held while writing, so a frame never lands in the middle of a printed line.
    terminal: Arc<Mutex<()>>,
}

impl Spinner {
    /// Starts spinning with `message` when standard error is a terminal.
    pub(crate) fn start(message: &str) -> Spinner {
        let terminal = Arc::new(Mutex::new(()));
        let task = std::io::stderr().is_terminal().then(|| {
            let terminal = terminal.clone();
            let message = message.to_owned();
            tokio::spawn(async move {
                for frame in FRAMES.iter().cycle() {
                    {
                        let _held = terminal.lock().unwrap_or_else(|e| e.into_inner());
                        let mut stderr = std::io::stderr();
                        let _ = write!(stderr, "\r{frame} {message}");
                        let _ = stderr.flush();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        Spinner { task, terminal }
    }

    /// Prints a line on standard output, above the spinner.
    pub(crate) fn println(&self, line: &str) {
        let _held = self.terminal.lock().unwrap_or_else(|e| e.into_inner());
        if self.task.is_some() {
            clear_line();
        }
        println!("{line}");
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _held = self.terminal.lock().unwrap_or_else(|e| e.into_inner());
            clear_line();
        }
    }
}

/// Moves to the start of the line and erases it.
fn clear_line() {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "\r\x1b[K");
    let _ = stderr.flush();
}
