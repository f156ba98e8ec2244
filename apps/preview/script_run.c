/* Replaying a script (script.c reads it): keys and text go through SDL's
 * event queue, as a person's would; waits watch the worker's state. */
#include "app.h"

#include <string.h>

static void push_key(SDL_Keycode keycode)
{
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_KEYDOWN;
    e.key.state = SDL_PRESSED;
    e.key.keysym.sym = keycode;
    e.key.keysym.scancode = SDL_GetScancodeFromKey(keycode);
    SDL_PushEvent(&e);
    e.type = SDL_KEYUP;
    e.key.state = SDL_RELEASED;
    SDL_PushEvent(&e);
}

static void push_text(const char *text)
{
    size_t len = strlen(text);
    for (size_t at = 0; at < len; at += SDL_TEXTINPUTEVENT_TEXT_SIZE - 1) {
        SDL_Event e;
        memset(&e, 0, sizeof e);
        e.type = SDL_TEXTINPUT;
        snprintf(e.text.text, sizeof e.text.text, "%.*s", (int)(SDL_TEXTINPUTEVENT_TEXT_SIZE - 1), text + at);
        SDL_PushEvent(&e);
    }
}

static int wait_satisfied(const app *a, const script_command *c)
{
    if (c->kind == SCRIPT_WAIT_STEP)
        return a->submitted_id && a->view.generation == a->submitted_id && a->view.step >= c->number;
    if (c->kind == SCRIPT_WAIT_DONE)
        return a->submitted_id && a->running_id == a->submitted_id && a->state != PREVIEW_RUNNING;
    return 1;
}

void script_run(app *a)
{
    preview_script *s = &a->script;
    double now = preview_now_s();
    while (s->next < s->count && !a->quit) {
        script_command *c = &s->commands[s->next];
        if (now < s->last_done_s + c->delay_s)
            return;
        if (c->kind == SCRIPT_WAIT_STEP || c->kind == SCRIPT_WAIT_DONE) {
            if (s->wait_started_s < 0)
                s->wait_started_s = now;
            if (a->state == PREVIEW_FAILED && a->running_id == a->submitted_id) {
                fprintf(stderr, "sla2-preview: script line %d: %s\n", c->line, a->worker_error);
                a->exit_code = 1, a->quit = 1;
                return;
            }
            int finished = a->submitted_id && a->running_id == a->submitted_id && a->state != PREVIEW_RUNNING;
            if (!wait_satisfied(a, c) && finished) {
                fprintf(stderr, "sla2-preview: script line %d: wait-step %d: the generation ended at step %d\n",
                        c->line, c->number, a->view.step);
                a->exit_code = 1, a->quit = 1;
                return;
            }
            if (!wait_satisfied(a, c)) {
                if (now - s->wait_started_s > s->timeout_s) {
                    fprintf(stderr, "sla2-preview: script line %d: %s %s: timed out after %.0f s\n", c->line,
                            c->kind == SCRIPT_WAIT_STEP ? "wait-step" : "wait-done", c->text, s->timeout_s);
                    a->exit_code = 1, a->quit = 1;
                }
                return;
            }
            s->wait_started_s = -1;
        }
        switch (c->kind) {
        case SCRIPT_KEY: push_key((SDL_Keycode)c->keycode); break;
        case SCRIPT_TEXT: push_text(c->text); break;
        case SCRIPT_SCREENSHOT:
            snprintf(a->screenshot_name, sizeof a->screenshot_name, "%s", c->text);
            a->screenshot_pending = 1;
            break;
        case SCRIPT_QUIT: a->quit = 1; break;
        default: break;
        }
        s->next++;
        s->last_done_s = now;
        /* One input or screenshot a frame: the next line sees its effect
         * (a wait after Enter waits for the new generation). */
        if (c->kind == SCRIPT_KEY || c->kind == SCRIPT_TEXT || c->kind == SCRIPT_SCREENSHOT)
            return;
    }
}

