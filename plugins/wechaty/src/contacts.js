// Contact specs: a contact named by its id, weixin, alias or display name, matched exactly, in
// that order of precedence (the same rule as wechaty-exporter's Python messenger). A tie at the
// deciding level goes to the one friend among the matches; any other tie is ambiguous, refused
// rather than guessed (a login QR is a credential).

export class ContactNotFound extends Error {}
export class ContactAmbiguous extends Error {}

const FIELDS = ['id', 'weixin', 'alias', 'name']

/**
 * What a Wechaty Contact says about itself, for matching.
 * @param {any} contact
 */
export function contactRecord (contact) {
  const payload = contact.payload ?? {}
  return {
    id: contact.id,
    name: payload.name || (typeof contact.name === 'function' ? contact.name() : '') || '',
    weixin: payload.weixin || '',
    alias: payload.alias || '',
    friend: payload.friend === true,
    contact,
  }
}

/** The records `spec` names at its deciding level (id, else weixin, else alias, else name). */
export function matchRecords (records, spec) {
  if (!spec) return []
  for (const field of FIELDS) {
    const found = records.filter(r => r[field] === spec)
    if (found.length > 0) return found
  }
  return []
}

/** The one record of `found`: the only one, or the only friend among several; else null. */
export function breakTie (found) {
  if (found.length === 1) return found[0]
  const friends = found.filter(r => r.friend)
  return friends.length === 1 ? friends[0] : null
}

/**
 * Every contact of the bot, as records. Unlike Contact.findAll(), which answers [] when the
 * puppet fails (an unknown contact, then, where the truth is "try again"), this throws.
 */
export async function directory (bot) {
  const ids = await bot.puppet.contactSearch()
  const records = []
  for (let i = 0; i < ids.length; i += 16) {
    const batch = await Promise.all(ids.slice(i, i + 16).map(async id => {
      const contact = bot.Contact.load(id)
      await contact.ready()
      return contactRecord(contact)
    }))
    records.push(...batch)
  }
  return records
}

/**
 * The contact `spec` names among the bot's contacts. Throws ContactNotFound, ContactAmbiguous,
 * or whatever listing the contacts threw (the puppet is away: transient).
 */
export async function resolveContact (bot, spec) {
  const found = matchRecords(await directory(bot), spec)
  if (found.length === 0) {
    throw new ContactNotFound(`no contact of the bot matches ${JSON.stringify(spec)} (by id, weixin, alias or name)`)
  }
  const one = breakTie(found)
  if (one === null) {
    throw new ContactAmbiguous(`${found.length} contacts match ${JSON.stringify(spec)}: name the contact by id or weixin`)
  }
  return one
}

/**
 * Whether `contact` is the one `spec` names. A contact none of whose own fields equals the spec
 * is answered at once, without listing the bot's contacts.
 */
export async function isContact (bot, contact, spec) {
  const record = contactRecord(contact)
  if (!spec) return false
  if (record.id === spec) return true
  if (!FIELDS.some(f => record[f] === spec)) return false
  try {
    return (await resolveContact(bot, spec)).id === record.id
  } catch {
    return false
  }
}
