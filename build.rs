// Exposes PyO3's interpreter cfgs (`Py_GIL_DISABLED`, `PyPy`, `Py_3_12`, ...) to this crate,
// so code that differs between GIL and free-threaded builds can say so at compile time.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
