//! All-or-nothing `up`: each action that made something registers how to unmake it; unless the
//! step commits, the undos run in reverse order when the guard is dropped.

/// A stack of undo actions run in reverse on drop, unless committed.
#[derive(Default)]
pub struct Undo {
    actions: Vec<Box<dyn FnOnce()>>,
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Undo({} pending)", self.actions.len())
    }
}

impl Undo {
    pub fn new() -> Self {
        Undo::default()
    }

    /// Registers how to undo what was just done.
    pub fn push(&mut self, action: impl FnOnce() + 'static) {
        self.actions.push(Box::new(action));
    }

    /// The step succeeded: keep everything.
    pub fn commit(mut self) {
        self.actions.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some(action) = self.actions.pop() {
            action();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn undoes_in_reverse_unless_committed() {
        let log = Rc::new(RefCell::new(Vec::new()));
        {
            let mut undo = Undo::new();
            for i in 0..3 {
                let log = log.clone();
                undo.push(move || log.borrow_mut().push(i));
            }
        }
        assert_eq!(*log.borrow(), [2, 1, 0]);
        let mut undo = Undo::new();
        let l = log.clone();
        undo.push(move || l.borrow_mut().push(9));
        undo.commit();
        assert_eq!(log.borrow().len(), 3);
    }
}
