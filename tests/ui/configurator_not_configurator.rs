use endpoint::prelude::*;

#[derive(Default)]
struct NotAConfigurator;

#[derive(Default)]
struct Secure;

#[server_endpoint("/secure", configurator = NotAConfigurator)]
impl Secure {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        text
    }
}

fn main() {}
