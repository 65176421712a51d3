//! Holds everything an instance allocates to `--max-memory`: all its linear
//! memories and all its tables together, and caps how many instances,
//! memories and tables a component may create.

use wasmtime::ResourceLimiter;

/// Raised from the limiter when memory would grow past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub struct OutOfMemory(pub usize);

/// Most core instances one component may create. A Rust `wasm32-wasip2`
/// component has a handful (the app, the WASI adapter, shims); thousands
/// would each cost the host memory the byte limit does not see.
pub const MAX_INSTANCES: usize = 64;

/// Most tables one component may create (each is a host allocation).
pub const MAX_TABLES: usize = 64;

/// Most linear memories one component may create.
pub const MAX_MEMORIES: usize = 16;

/// Bytes one table element is counted as towards `--max-memory` (a function
/// reference is a pointer and a type, two words, in wasmtime's tables).
const TABLE_ELEMENT_BYTES: usize = 16;

/// Holds everything an instance allocates — all its linear memories and all
/// its tables together — to `--max-memory`, and caps how many instances,
/// memories and tables it may create. Growing past the budget traps instead
/// of returning -1, so the failure is reported for what it is.
pub struct MemoryLimiter {
    max_memory: usize,
    /// Bytes of memories and tables granted so far. Nothing in a component
    /// shrinks, so growth only adds.
    granted: usize,
}

impl MemoryLimiter {
    pub fn new(max_memory: usize) -> Self {
        MemoryLimiter {
            max_memory,
            granted: 0,
        }
    }

    /// Grants `more` bytes if the budget allows it.
    fn grant(&mut self, more: usize) -> wasmtime::Result<bool> {
        match self.granted.checked_add(more) {
            Some(total) if total <= self.max_memory => {
                self.granted = total;
                Ok(true)
            }
            _ => Err(OutOfMemory(self.max_memory).into()),
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grant(desired.saturating_sub(current))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        self.grant(more.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Store;
    use wasmtime::{Engine, Instance, Module};

    const MIB: usize = 1024 * 1024;
    const PAGE: usize = 64 * 1024;

    fn limited_store(max_memory: usize) -> Store<MemoryLimiter> {
        let mut store = Store::new(&Engine::default(), MemoryLimiter::new(max_memory));
        store.limiter(|limiter| limiter);
        store
    }

    fn instantiate(store: &mut Store<MemoryLimiter>, wat: &str) -> wasmtime::Result<Instance> {
        let module = Module::new(store.engine(), wat::parse_str(wat)?)?;
        Instance::new(store, &module, &[])
    }

    fn is_out_of_memory(error: &wasmtime::Error) -> bool {
        error
            .chain()
            .any(|cause| cause.downcast_ref::<OutOfMemory>().is_some())
    }

    #[test]
    fn the_budget_covers_all_memories_together() {
        // Each 640 KiB memory fits a 1 MiB budget; both together do not.
        let mut store = limited_store(MIB);
        let error = instantiate(&mut store, "(module (memory 10) (memory 10))").unwrap_err();
        assert!(is_out_of_memory(&error), "{error:#}");
        let mut store = limited_store(MIB);
        instantiate(&mut store, "(module (memory 10))").unwrap();
        // A second instance in the same store shares the budget.
        let error = instantiate(&mut store, "(module (memory 10))").unwrap_err();
        assert!(is_out_of_memory(&error), "{error:#}");
    }

    #[test]
    fn growth_counts_against_the_budget() {
        let mut store = limited_store(4 * PAGE);
        let instance = instantiate(
            &mut store,
            r#"(module (memory (export "m") 1)
                 (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
        )
        .unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(grow.call(&mut store, 3).unwrap(), 1, "grown to 4 pages");
        let error = grow.call(&mut store, 1).unwrap_err();
        assert!(is_out_of_memory(&error), "{error:#}");
    }

    #[test]
    fn tables_count_against_the_budget() {
        let mut store = limited_store(MIB);
        // 100,000 elements at 16 bytes each: 1.6 MB.
        let error = instantiate(&mut store, "(module (table 100000 funcref))").unwrap_err();
        assert!(is_out_of_memory(&error), "{error:#}");
        let mut store = limited_store(MIB);
        instantiate(&mut store, "(module (table 1000 funcref))").unwrap();
    }

    #[test]
    fn instances_memories_and_tables_are_capped_in_number() {
        let mut store = limited_store(usize::MAX);
        for _ in 0..MAX_INSTANCES {
            instantiate(&mut store, "(module)").unwrap();
        }
        assert!(
            instantiate(&mut store, "(module)").is_err(),
            "one instance too many"
        );

        let memories = "(memory 0) ".repeat(MAX_MEMORIES + 1);
        let mut store = limited_store(usize::MAX);
        assert!(instantiate(&mut store, &format!("(module {memories})")).is_err());
        let tables = "(table 0 funcref) ".repeat(MAX_TABLES + 1);
        let mut store = limited_store(usize::MAX);
        assert!(instantiate(&mut store, &format!("(module {tables})")).is_err());
        let mut store = limited_store(usize::MAX);
        let tables = "(table 0 funcref) ".repeat(MAX_TABLES);
        instantiate(&mut store, &format!("(module {tables})")).unwrap();
    }
}
