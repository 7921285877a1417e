// Compose's variables: interpolation of a value, the .env file, the project name rule.
#include <cctype>

#include "volprep/compose.h"

namespace volprep {
namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The '}' closing the "${" at `open`, counting nested "${...}" in defaults; npos if none.
size_t closing_brace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (s[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

Error invalid(std::string_view text, std::string why) {
  return config_error("invalid interpolation format in \"" + std::string(text) + "\": " + why +
                      " (write $$ for a literal $)");
}

}  // namespace

Result<std::string> interpolate(std::string_view text, const Variables& vars, std::vector<std::string>* unset) {
  std::string out;
  size_t i = 0;
  auto lookup = [&](const std::string& name) -> const std::string* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : &it->second;
  };
  while (i < text.size()) {
    char c = text[i];
    if (c != '$') {
      out += c;
      ++i;
      continue;
    }
    char d = i + 1 < text.size() ? text[i + 1] : '\0';
    if (d == '$') {
      out += '$';
      i += 2;
    } else if (name_start(d)) {
      size_t end = i + 1;
      while (end < text.size() && name_char(text[end])) ++end;
      std::string name(text.substr(i + 1, end - i - 1));
      if (const auto* v = lookup(name)) out += *v;
      else if (unset) unset->push_back(name);
      i = end;
    } else if (d == '{') {
      size_t close = closing_brace(text, i);
      if (close == std::string_view::npos) return invalid(text, "a ${ without its }");
      std::string_view inner = text.substr(i + 2, close - i - 2);
      size_t n = 0;
      if (n < inner.size() && name_start(inner[n]))
        while (n < inner.size() && name_char(inner[n])) ++n;
      if (n == 0) return invalid(text, "${" + std::string(inner) + "} names no variable");
      std::string name(inner.substr(0, n));
      std::string_view rest = inner.substr(n);
      const std::string* v = lookup(name);
      bool colon = rest.starts_with(':');
      if (colon) rest.remove_prefix(1);
      char op = rest.empty() ? '\0' : rest[0];
      if (!rest.empty()) rest.remove_prefix(1);
      bool present = v && (!colon || !v->empty());  // ":" also counts an empty value as unset
      if (op == '\0' && !colon) {
        if (v) out += *v;
        else if (unset) unset->push_back(name);
      } else if (op == '-' || op == '+') {
        if ((op == '-') != present) {
          auto sub = interpolate(rest, vars, unset);
          if (!sub) return sub;
          out += *sub;
        } else if (op == '-') {
          out += *v;
        }
      } else if (op == '?') {
        if (!present) {
          // The message as written: interpolated, it could quote another variable's value.
          return config_error("required variable " + name + " is missing a value" +
                              (rest.empty() ? "" : ": " + std::string(rest)));
        }
        out += *v;
      } else {
        return invalid(text, "${" + std::string(inner) + "}: expected :-, -, :?, ?, :+ or + after the name");
      }
      i = close + 1;
    } else {
      return invalid(text, d ? std::string("a $ before '") + d + "'" : "a $ at the end");
    }
  }
  return out;
}

Result<Variables> parse_env_file(const std::string& text, const std::string& file, const Variables& outer) {
  Variables vars;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    auto where = [&](std::string why) { return config_error(file + ":" + std::to_string(line_no) + ": " + why); };
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line[0] == '#') continue;
    if (line.starts_with("export ")) line.remove_prefix(7);
    size_t eq = line.find('=');
    std::string_view key = line.substr(0, eq);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    if (key.empty() || !name_start(key[0]))
      return where("expected VARIABLE=VALUE");
    for (size_t k = 0; k < key.size(); ++k)
      if (!name_char(key[k]) && key[k] != '.' && key[k] != '-')
        return where("the variable name has a character other than a letter, a digit, _, . or - (at character " +
                     std::to_string(k + 1) + ")");
    if (eq == std::string_view::npos) continue;  // a name alone: taken from the environment, if at all
    // The file may be one the project's owner may not read: errors quote nothing of it but
    // the variable's name.
    auto bad_value = [&] {
      return where("the value of " + std::string(key) +
                   " cannot be interpolated: a ${...} in it is malformed or needs a variable that is not set "
                   "(write $$ for a literal $)");
    };
    std::string_view value = line.substr(eq + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    Variables scope = outer;  // the lines before, then the environment
    for (const auto& [k, v] : vars) scope.emplace(k, v);
    std::string result;
    if (!value.empty() && value[0] == '\'') {
      size_t end = value.find('\'', 1);
      if (end == std::string_view::npos) return where("a ' without its closing '");
      result = value.substr(1, end - 1);
    } else if (!value.empty() && value[0] == '"') {
      std::string raw;
      size_t k = 1;
      for (; k < value.size() && value[k] != '"'; ++k) {
        if (value[k] == '\\' && k + 1 < value.size()) {
          char e = value[++k];
          raw += e == 'n' ? '\n' : e == 't' ? '\t' : e;
          if (e == '$') raw += '$';  // \$ is a literal $, kept through interpolation
        } else {
          raw += value[k];
        }
      }
      if (k >= value.size()) return where("a \" without its closing \"");
      auto r = interpolate(raw, scope, nullptr);
      if (!r) return bad_value();
      result = *r;
    } else {
      if (size_t hash = value.find(" #"); hash != std::string_view::npos) value = value.substr(0, hash);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      auto r = interpolate(value, scope, nullptr);
      if (!r) return bad_value();
      result = *r;
    }
    vars[std::string(key)] = result;
  }
  return vars;
}

std::string normalize_project_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::isalnum(static_cast<unsigned char>(l)) || ((l == '_' || l == '-') && !out.empty())) out += l;
  }
  return out;
}

}  // namespace volprep
