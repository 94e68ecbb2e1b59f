async fn load<'a, T: Decode + 'a, R>(
    &'a self,
    name: &'a str,
    rows: impl AsRef<[R]>,
) -> Result<Vec<T>, Error>
where
    R: Row,
{
    #![allow(unused_variables)]
    let __resilience = ::resilience_core::__private::Resilient::resilience(&*self);
    let mut __run = ::resilience_core::__private::Run::method(
        __resilience,
        ::core::option::Option::None,
        ::core::option::Option::None,
        "load",
    );
    let __run = {
        #[allow(unused_imports)]
        use ::resilience_core::__private::{CheckedRun as _, UncheckedRun as _};
        (&::resilience_core::__private::Check::<Result<Vec<T>, Error>>::new())
            .run(&mut __run)
    };
    loop {
        if let ::core::option::Option::Some(__done) = __run
            .step::<Result<Vec<T>, Error>, _>(async { self.decode(name, rows.as_ref()) })
            .await
        {
            return __done;
        }
    }
}
