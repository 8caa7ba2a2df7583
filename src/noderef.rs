//! How nodes are shared: [`NodeRef`], a counted handle whose count the GIL guards.
//!
//! The engine stores each entry's node as its value and hands every read a clone of
//! that value, so a handle's clone and drop sit on the hit path of every lookup. With
//! `Arc` they are two atomic read-modify-writes, which measured about 10 ns of a
//! 130 ns `get` hit on the project's machines (DEVELOPERS.md, "Profiling the hot path").
//!
//! On GIL builds of CPython the count is a plain integer instead, changed only by a
//! thread that holds the GIL, which orders every change:
//! - moka clones values only inside engine calls, and every engine call is made by an
//!   attached thread (`store.rs`), which on these builds holds the GIL;
//! - moka drops values inside engine calls too, with one exception: crossbeam-epoch,
//!   which moka frees removed entries through, also runs deferred frees from the
//!   exit handler of any thread that used a cache, without the GIL (`keys.rs`). So a
//!   drop first checks that its thread holds the GIL ([`holds_gil`]), and otherwise
//!   hands the release to the next thread that releases deferred references
//!   (`pyref::adopt_release`);
//! - the paths that know they hold the GIL (a `Python` token proves it) release with
//!   [`NodeRef::release`], which skips that check.
//!
//! One difference from `Arc`: a node whose last handle an exiting thread drops stays alive
//! until the next public call on any thread runs the handed-over release (every call ends
//! by doing so when anything waits). Until then a lookup that probes the entry's tombstone
//! in moka's table still compares against its key, as it would while another call held
//! the node.
//!
//! This argument rests on what moka does with values: it starts no threads of its own,
//! calls the eviction listener synchronously, and clones values only inside calls made to
//! it. `Cargo.toml` pins moka's exact version for that reason; re-read its clone and drop
//! sites before moving it.
//!
//! The weak count stays atomic: weak handles live in moka's keys, which die in the same
//! exit handlers, and weak operations are off the hit path. A node's contents are
//! dropped when the last strong handle goes, always under the GIL; its memory is freed
//! when the last weak handle goes, on whichever thread that is.
//!
//! Free-threaded builds have no GIL to order the count, and PyPy's threads are its own:
//! there a `NodeRef` is an `Arc`.

#[cfg(any(Py_GIL_DISABLED, PyPy, GraalPy))]
pub use atomic::{NodeRef, WeakNode};
#[cfg(not(any(Py_GIL_DISABLED, PyPy, GraalPy)))]
pub use gil_counted::{NodeRef, WeakNode};

#[cfg(not(any(Py_GIL_DISABLED, PyPy, GraalPy)))]
mod gil_counted {
    use std::cell::Cell;
    use std::mem::ManuallyDrop;
    use std::ops::Deref;
    use std::ptr::{self, NonNull};
    use std::sync::atomic::{fence, AtomicUsize, Ordering};

    use pyo3::ffi;
    use pyo3::prelude::*;

    use crate::node::Node;
    use crate::pyref;

    /// The allocation a node lives in, with its counts.
    struct Shared {
        /// Strong handles. Only a thread that holds the GIL reads or changes it.
        strong: Cell<usize>,
        /// Weak handles, plus one held by all the strong ones together (as in `Arc`).
        weak: AtomicUsize,
        /// Dropped when `strong` reaches zero; the allocation lives on while `weak` does.
        node: ManuallyDrop<Node>,
    }

    /// The strong count of `shared`.
    ///
    /// The counts are reached through their own fields, never through a `&Shared`: that
    /// would cover the node, which `drop_node` may be dropping on another thread while a
    /// weak handle is released (only the atomic weak count is shared then).
    ///
    /// # Safety
    /// The allocation is alive (a handle of either kind keeps it so).
    #[inline(always)]
    unsafe fn strong<'a>(shared: NonNull<Shared>) -> &'a Cell<usize> {
        &(*shared.as_ptr()).strong
    }

    /// The weak count of `shared`; see [`strong`].
    ///
    /// # Safety
    /// As for [`strong`].
    #[inline(always)]
    unsafe fn weak<'a>(shared: NonNull<Shared>) -> &'a AtomicUsize {
        &(*shared.as_ptr()).weak
    }

    /// A strong handle to a node: the node stays alive while one exists.
    pub struct NodeRef(NonNull<Shared>);

    /// A weak handle to a node: keeps its memory, not its contents.
    pub struct WeakNode(NonNull<Shared>);

    // SAFETY: a handle is a pointer whose strong count is only changed by a thread that
    // holds the GIL (see the module docs: clones happen inside engine calls, drops either
    // hold the GIL or hand the release to a thread that does), so moving or sharing
    // handles between threads never races on it. The node itself is Send + Sync.
    unsafe impl Send for NodeRef {}
    // SAFETY: see `Send`; `&NodeRef` gives `&Node` (Sync) and `clone`, which needs the GIL.
    unsafe impl Sync for NodeRef {}
    // SAFETY: a weak handle changes only the atomic weak count, and reads the strong
    // count only with the GIL held (`upgrade` takes a `Python` token).
    unsafe impl Send for WeakNode {}
    // SAFETY: see `Send`.
    unsafe impl Sync for WeakNode {}

    impl NodeRef {
        pub fn new(node: Node) -> NodeRef {
            let shared = Box::new(Shared {
                strong: Cell::new(1),
                weak: AtomicUsize::new(1),
                node: ManuallyDrop::new(node),
            });
            NodeRef(NonNull::from(Box::leak(shared)))
        }

        /// A weak handle to the same node.
        pub fn downgrade(this: &NodeRef) -> WeakNode {
            // SAFETY: a strong handle keeps the allocation alive.
            unsafe { weak(this.0) }.fetch_add(1, Ordering::Relaxed);
            WeakNode(this.0)
        }

        /// The node's address, to recognise it (never dereferenced through this).
        #[inline]
        pub fn as_ptr(this: &NodeRef) -> *const Node {
            ptr::from_ref::<Node>(this)
        }

        /// Drops this handle where the caller holds the GIL (the token proves it),
        /// sparing the check that `drop` makes.
        #[inline]
        pub fn release(self, _py: Python<'_>) {
            let shared = self.0;
            std::mem::forget(self);
            // SAFETY: we hold the GIL and give up this handle's count.
            unsafe { release_strong(shared) };
        }
    }

    impl Clone for NodeRef {
        #[inline]
        fn clone(&self) -> NodeRef {
            // moka and this crate clone handles only on threads that hold the GIL (see the
            // module docs); a debug build checks it.
            debug_assert!(holds_gil(), "a node handle cloned without the GIL");
            // SAFETY: a strong handle keeps the allocation alive.
            let strong = unsafe { strong(self.0) };
            strong.set(strong.get() + 1);
            NodeRef(self.0)
        }
    }

    impl Drop for NodeRef {
        #[inline]
        fn drop(&mut self) {
            if holds_gil() {
                // SAFETY: we hold the GIL and give up this handle's count.
                unsafe { release_strong(self.0) };
            } else {
                let shared = Orphaned(self.0);
                pyref::adopt_release(Box::new(move |_py| {
                    let shared = shared;
                    // SAFETY: the adopting thread holds the GIL (the token proves it).
                    unsafe { release_strong(shared.0) };
                }));
            }
        }
    }

    /// A handle's count handed to another thread to release.
    struct Orphaned(NonNull<Shared>);

    // SAFETY: the count is released only by the thread that runs the release, which
    // holds the GIL; moving the pointer there touches nothing.
    unsafe impl Send for Orphaned {}

    impl Deref for NodeRef {
        type Target = Node;

        #[inline]
        fn deref(&self) -> &Node {
            // SAFETY: a strong handle keeps the node alive, and nothing mutates it meanwhile
            // (only `drop_node` does, once no strong handle is left).
            unsafe { &(*self.0.as_ptr()).node }
        }
    }

    /// Gives up one strong count of `shared`, dropping the node with the last one.
    ///
    /// # Safety
    /// The caller holds the GIL and owns the count it gives up.
    #[inline(always)]
    unsafe fn release_strong(shared: NonNull<Shared>) {
        let strong = strong(shared);
        let left = strong.get() - 1;
        strong.set(left);
        if left == 0 {
            drop_node(shared);
        }
    }

    /// Drops the node whose last strong count was just given up.
    ///
    /// # Safety
    /// As for `release_strong`, and the strong count is zero.
    #[cold]
    #[inline(never)]
    unsafe fn drop_node(shared: NonNull<Shared>) {
        // No strong handle is left and none can appear (`upgrade` needs the GIL and a
        // non-zero count); weak handles read the node only while the count is non-zero
        // and the GIL is held, so nothing else refers to it now.
        ManuallyDrop::drop(&mut (*shared.as_ptr()).node);
        drop(WeakNode(shared));
    }

    impl WeakNode {
        /// Whether the node is alive. The answer holds while the GIL stays held.
        #[inline]
        fn is_alive(&self, _py: Python<'_>) -> bool {
            // SAFETY: a weak handle keeps the allocation; the GIL orders the count.
            unsafe { strong(self.0) }.get() != 0
        }

        /// A strong handle, if the node is still alive (the crate's lookups use
        /// `with_key`, which takes none).
        #[cfg(test)]
        pub fn upgrade(&self, py: Python<'_>) -> Option<NodeRef> {
            if !self.is_alive(py) {
                return None;
            }
            // SAFETY: as in `is_alive`.
            let strong = unsafe { strong(self.0) };
            strong.set(strong.get() + 1);
            Some(NodeRef(self.0))
        }

        /// Runs `f` on the node's key if the node is alive, without taking a handle.
        ///
        /// The key is alive when `f` starts, and stays so while the GIL stays held; if
        /// `f` may let other threads run (a Python `__eq__`), it must take a reference
        /// to the key first, as `keys::compare` does.
        #[inline]
        pub fn with_key<'py, R>(
            &self,
            py: Python<'py>,
            f: impl FnOnce(Borrowed<'_, 'py, PyAny>) -> R,
        ) -> Option<R> {
            if !self.is_alive(py) {
                return None;
            }
            // SAFETY: the node is alive and cannot be dropped before the GIL is released
            // (drops hold the GIL); we copy the key's address out, and keep no reference
            // to the node while `f` runs.
            let key = unsafe { (*self.0.as_ptr()).node.key().as_ptr() };
            // SAFETY: the key is alive now (see above and the function's docs).
            Some(f(unsafe { Borrowed::from_ptr(py, key) }))
        }
    }

    impl Drop for WeakNode {
        fn drop(&mut self) {
            // SAFETY: a weak handle keeps the allocation until its count is released.
            let weak = unsafe { weak(self.0) };
            if weak.fetch_sub(1, Ordering::Release) == 1 {
                fence(Ordering::Acquire);
                // SAFETY: that was the last handle of any kind. The node was dropped with
                // the last strong one (`node` is `ManuallyDrop`, so this frees memory only).
                drop(unsafe { Box::from_raw(self.0.as_ptr()) });
            }
        }
    }

    /// Whether this thread holds the GIL.
    ///
    /// The thread's own thread state (the one `PyGILState` keeps for it) must be the one
    /// that is current: on 3.12 and later the current state is per thread and set only
    /// while the thread is attached; before 3.12 it is the GIL holder's. Either way a
    /// match means this thread holds the GIL. An exiting thread, whose state is gone, or
    /// one attached through another state answers `false`, which is always safe: its
    /// drop is only deferred.
    #[inline]
    fn holds_gil() -> bool {
        // SAFETY: both calls only read the calling thread's state, attached or not.
        unsafe {
            let own = ffi::PyGILState_GetThisThreadState();
            !own.is_null() && own == ffi::compat::PyThreadState_GetUnchecked()
        }
    }
}

#[cfg(any(Py_GIL_DISABLED, PyPy, GraalPy))]
mod atomic {
    use std::ops::Deref;
    use std::sync::{Arc, Weak};

    use pyo3::prelude::*;

    use crate::node::Node;

    /// A strong handle to a node: the node stays alive while one exists.
    #[derive(Clone)]
    pub struct NodeRef(Arc<Node>);

    /// A weak handle to a node: keeps its memory, not its contents.
    pub struct WeakNode(Weak<Node>);

    impl NodeRef {
        pub fn new(node: Node) -> NodeRef {
            NodeRef(Arc::new(node))
        }

        pub fn downgrade(this: &NodeRef) -> WeakNode {
            WeakNode(Arc::downgrade(&this.0))
        }

        #[inline]
        pub fn as_ptr(this: &NodeRef) -> *const Node {
            Arc::as_ptr(&this.0)
        }

        #[inline]
        pub fn release(self, _py: Python<'_>) {}
    }

    impl Deref for NodeRef {
        type Target = Node;

        #[inline]
        fn deref(&self) -> &Node {
            &self.0
        }
    }

    impl WeakNode {
        /// Runs `f` on the node's key if the node is alive, holding a strong handle
        /// meanwhile.
        #[inline]
        pub fn with_key<'py, R>(
            &self,
            py: Python<'py>,
            f: impl FnOnce(Borrowed<'_, 'py, PyAny>) -> R,
        ) -> Option<R> {
            let node = self.0.upgrade()?;
            Some(f(node.key().bind(py)))
        }
    }
}

#[cfg(all(test, not(any(Py_GIL_DISABLED, PyPy, GraalPy))))]
mod tests {
    use pyo3::prelude::*;
    use pyo3::types::{PyList, PyString};

    use super::{NodeRef, WeakNode};
    use crate::node::Node;
    use crate::pyref::{self, PyOwned};

    fn node(py: Python<'_>, value: &Bound<'_, PyAny>) -> NodeRef {
        let key = PyString::new(py, "key").into_any();
        NodeRef::new(Node::new(
            PyOwned::new(&key),
            PyOwned::new(value),
            1,
            0,
            None,
        ))
    }

    fn refcount(obj: &Bound<'_, PyAny>) -> isize {
        // SAFETY: `obj` is a live object and we are attached.
        unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
    }

    fn alive(weak: &WeakNode, py: Python<'_>) -> bool {
        weak.with_key(py, |_| ()).is_some()
    }

    #[test]
    fn the_node_lives_while_a_strong_handle_does() {
        Python::initialize();
        Python::attach(|py| {
            let value = PyList::empty(py).into_any();
            let before = refcount(&value);
            let first = node(py, &value);
            let weak = NodeRef::downgrade(&first);
            let second = first.clone();
            first.release(py);
            assert!(alive(&weak, py));
            let third = weak.upgrade(py).expect("a strong handle is left");
            drop(second);
            assert!(alive(&weak, py));
            third.release(py);
            assert!(!alive(&weak, py), "the last strong handle drops the node");
            assert!(weak.upgrade(py).is_none());
            pyref::release_deferred(py);
            assert_eq!(refcount(&value), before, "the node's value was released");
        });
    }

    #[test]
    fn a_drop_without_the_gil_is_released_by_a_thread_that_holds_it() {
        Python::initialize();
        Python::attach(|py| {
            let value = PyList::empty(py).into_any();
            let before = refcount(&value);
            let handle = node(py, &value);
            let weak = NodeRef::downgrade(&handle);
            // A thread that never attached drops the last handle, as crossbeam's exit
            // handler may: the count must not change there.
            py.detach(|| std::thread::spawn(move || drop(handle)).join().unwrap());
            assert!(
                alive(&weak, py),
                "the release waits for a thread with the GIL"
            );
            assert!(pyref::has_deferred());
            pyref::release_deferred(py);
            assert!(!alive(&weak, py));
            assert_eq!(refcount(&value), before);
        });
    }
}
