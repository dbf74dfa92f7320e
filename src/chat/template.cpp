#include "chat/template.h"

#include <exception>
#include <new>
#include <nlohmann/json.hpp>

#include "chat/template_interp.h"
#include "chat/template_lexer.h"
#include "chat/template_parser.h"

namespace tandem::chat {

struct ChatTemplate::Impl {
  std::string source;
  detail::Program program;
};

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  auto tokens = detail::tokenize(source);
  if (!tokens.ok()) return tokens.status();
  auto program = detail::parse_program(*tokens);
  if (!program.ok()) return program.status();
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(source);
  impl->program = std::move(program).value();
  return ChatTemplate(std::move(impl));
}

const std::string& ChatTemplate::source() const { return impl_->source; }

namespace {

template <typename Json>
Result<std::string> render_impl(const detail::Program& program, const Json& context, const RenderOptions& options) {
  try {
    detail::Interp interp(options);
    auto globals = std::make_shared<detail::Env>();
    interp.install_globals(*globals);
    if (!context.is_object() && !context.is_null()) return Status::error("chat template context must be a JSON object");
    if (context.is_object()) {
      for (auto it = context.begin(); it != context.end(); ++it) {
        if (globals->vars.count(it.key())) return Status::error("Variable already declared: " + it.key());
        globals->vars[it.key()] = detail::Interp::from_json(it.value());
      }
    }
    return interp.render(program, globals);
  } catch (const detail::TemplateError& e) {
    return Status::error(e.message);
  } catch (const std::bad_alloc&) {
    return Status::error("chat template rendering ran out of memory");
  } catch (const std::exception& e) {
    return Status::errorf("chat template rendering failed: {}", e.what());
  }
}

}  // namespace

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return render_impl(impl_->program, context, RenderOptions{});
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context, const RenderOptions& options) const {
  return render_impl(impl_->program, context, options);
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_impl(impl_->program, context, RenderOptions{});
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  return render_impl(impl_->program, context, options);
}

std::string_view chatml_fallback_template() {
  static constexpr std::string_view kTemplate = R"({%- for message in messages -%}
    {{- '<|im_start|>' + message.role + '\n' -}}
    {%- if message.content is string -%}
        {{- message.content -}}
    {%- elif message.content is iterable -%}
        {%- for part in message.content -%}
            {%- if part.type == 'text' -%}
                {{- part.text -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
)";
  return kTemplate;
}

}  // namespace tandem::chat
