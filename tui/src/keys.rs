//! Keys to actions, as htop, btop and k9s users expect them.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing (an unbound key, a key release).
    None,
    /// `q`, Ctrl-C.
    Quit,
    /// Up, `k`.
    Up,
    /// Down, `j`.
    Down,
    /// PageUp.
    PageUp,
    /// PageDown.
    PageDown,
    /// Home, `g`.
    Top,
    /// End, `G`.
    Bottom,
    /// Enter, space: expand or collapse.
    Toggle,
    /// Right, `l`, `+`.
    Expand,
    /// Left, `h`, `-`.
    Collapse,
    /// `/`.
    FilterStart,
    /// A character typed into the filter.
    FilterChar(char),
    /// Backspace in the filter.
    FilterBack,
    /// Enter in the filter: keep it.
    FilterDone,
    /// Esc in the filter: drop it.
    FilterCancel,
    /// `>`, `.`, `s`, F6: sort by the next column to the right.
    SortNext,
    /// `<`, `,`: sort by the next column to the left.
    SortPrev,
    /// `I`, `r`: reverse the sort.
    SortReverse,
    /// `t`: wall-clock or relative event times.
    Times,
    /// `p`.
    Pause,
    /// `e`.
    Export,
    /// `?`, F1.
    Help,
    /// Tab: events or detail below a narrow tree.
    SwitchPane,
    /// Esc: close help, clear the status line.
    Escape,
}

/// The action of `key`, while the filter is being typed (`editing`) or help is shown.
pub fn action(key: KeyEvent, editing: bool, help: bool) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Action::Quit;
    }
    if editing {
        return match key.code {
            KeyCode::Enter => Action::FilterDone,
            KeyCode::Esc => Action::FilterCancel,
            KeyCode::Backspace => Action::FilterBack,
            KeyCode::Char(c) if !ctrl => Action::FilterChar(c),
            _ => Action::None,
        };
    }
    if help {
        // Any key closes help, except quit which still quits.
        return match key.code {
            KeyCode::Char('q') => Action::Quit,
            _ => Action::Help,
        };
    }
    match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter | KeyCode::Char(' ') => Action::Toggle,
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('+') => Action::Expand,
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('-') => Action::Collapse,
        KeyCode::Char('/') => Action::FilterStart,
        KeyCode::Char('>' | '.' | 's') | KeyCode::F(6) => Action::SortNext,
        KeyCode::Char('<' | ',') => Action::SortPrev,
        KeyCode::Char('I' | 'r') => Action::SortReverse,
        KeyCode::Char('t') => Action::Times,
        KeyCode::Char('p') => Action::Pause,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Tab => Action::SwitchPane,
        KeyCode::Esc => Action::Escape,
        _ => Action::None,
    }
}

/// The help screen's lines: key, what it does.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move"),
    ("PgUp PgDn g G", "page, top, bottom"),
    ("Enter  space", "expand or collapse"),
    ("→ ← l h", "expand, collapse / go to group"),
    ("/", "filter every pane (Enter keeps)"),
    ("< >  s F6", "sort by the column left, right"),
    ("I  r", "reverse the sort"),
    ("t", "wall-clock or relative times"),
    ("p", "pause the view (capture goes on)"),
    ("e", "export the view as JSON"),
    ("Tab", "events or detail (narrow screen)"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_like_htop() {
        assert_eq!(action(k(KeyCode::Char('j')), false, false), Action::Down);
        assert_eq!(action(k(KeyCode::Up), false, false), Action::Up);
        assert_eq!(action(k(KeyCode::Enter), false, false), Action::Toggle);
        assert_eq!(action(k(KeyCode::Char('q')), false, false), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c, true, false), Action::Quit);
    }

    #[test]
    fn typing_a_filter_takes_letters_that_are_keys_elsewhere() {
        assert_eq!(
            action(k(KeyCode::Char('q')), true, false),
            Action::FilterChar('q')
        );
        assert_eq!(action(k(KeyCode::Esc), true, false), Action::FilterCancel);
        assert_eq!(action(k(KeyCode::Char('j')), false, true), Action::Help);
    }
}
