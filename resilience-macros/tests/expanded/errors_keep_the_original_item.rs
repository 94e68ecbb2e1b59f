fn sync(&self) -> u32 {
    1
}
::core::compile_error! {
    "#[resilient_operation] wraps only an `async fn`: write `async fn`, each attempt awaits the body"
}
::core::compile_error! {
    "`policy` takes a string literal: write `policy = \"db\"`"
}
