//! The `moka_py._moka_py` extension module.

use pyo3::prelude::*;

#[pyclass(frozen, module = "moka_py")]
struct Moka;

#[pymethods]
impl Moka {
    #[new]
    fn new() -> Self {
        Moka
    }
}

#[pymodule(gil_used = false)]
fn _moka_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Moka>()?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
