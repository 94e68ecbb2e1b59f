pub(crate) async fn next(&mut self) -> io::Result<u32> {
    const _: ::core::option::Option<&str> = ::core::option_env!("RESILIENCE_POLICY_DIR");
    const _: &[u8] = ::core::include_bytes!("/policies/default.toml");
    const _: &[u8] = ::core::include_bytes!("/policies/prod.toml");
    let __resilience = &::core::clone::Clone::clone(
        ::resilience_core::__private::Resilient::resilience(&*self),
    );
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::Some("db"),
        ::core::option::Option::None,
        "next",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<io::Result<u32>>::new()).run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<
                io::Result<u32>,
                _,
            >(async {
                self.calls += 1;
                Ok(self.calls)
            })
            .await
        {
            return __done;
        }
    }
}
