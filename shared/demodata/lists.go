package demodata

// The small embedded lists the generator draws from. Names are unique under
// case folding and NFC (a different list entry is always a real difference).
// No first name starts with "J" followed by a letter between 'Ö' and 'ö'
// (U+00D6..U+00F6): the showcase's upper-case JÖRG.MÜLLER@example.com then
// sorts among the generated customers the same under SQLite's ASCII-only
// NOCASE collation as under merge.Key, so System A's primary-key order is the
// join-key order (a test checks it).

var firstNames = []string{
	"Ada", "Aiko", "Alejandro", "Amélie", "Anna", "Åsa", "Björn", "Camille",
	"Carlos", "Chloé", "Chen", "Daniel", "Dorota", "Elif", "Emma", "Fatima",
	"François", "Giulia", "Hannah", "Helga", "Inés", "Isabella", "Jürgen",
	"José", "Julia", "Kai", "Kenji", "Lars", "Laura", "Léa", "Liam", "Lucía",
	"Łukasz", "Magnus", "Małgorzata", "Marco", "María", "Mateo", "Mia",
	"Noah", "Nuno", "Olivia", "Oscar", "Paweł", "Priya", "Renée", "Ruth",
	"Siobhán", "Søren", "Sophie", "Ștefan", "Tomás", "Ulla", "Victor",
	"Wei", "Yusuf", "Zoë", "Zofia",
}

var lastNames = []string{
	"Andersson", "Bianchi", "Brown", "Çelik", "Da Silva", "Dąbrowski",
	"de Vries", "Dubois", "Fernández", "Fischer", "García", "Hansen",
	"Hernández", "Ivanova", "Jansen", "Jensen", "Johnson", "Kowalski",
	"Lambert", "Larsen", "Lefèvre", "Li", "López", "Martin", "Meyer",
	"Moreau", "Müller", "Nakamura", "Nguyen", "Nielsen", "Novák", "Nowak",
	"O'Connor", "Olsen", "Patel", "Pereira", "Petit", "Rossi", "Sánchez",
	"Schmidt", "Schröder", "Silva", "Smith", "Sørensen", "Strauß", "Suzuki",
	"Takahashi", "Taylor", "van den Berg", "Wagner", "Weiß", "Williams",
	"Wiśniewski", "Yılmaz", "Zieliński",
}

// country is one country's address and phone conventions. In patterns '#'
// is a digit and 'A' an upper-case letter; everything else is literal.
type country struct {
	code        string // ISO 3166 alpha-2
	cities      []string
	streets     []string
	numberFirst bool // "12 Main Street" rather than "Hauptstraße 12"
	postal      string
	phone       string
}

var countries = []country{
	{code: "DE", cities: []string{"Berlin", "München", "Köln", "Düsseldorf", "Nürnberg"},
		streets: []string{"Hauptstraße", "Schillerstraße", "Gartenweg", "Bahnhofstraße", "Am Mühlbach"},
		postal:  "#####", phone: "+49 ### #######"},
	{code: "FR", cities: []string{"Paris", "Lyon", "Besançon", "Nîmes", "Orléans"},
		streets:     []string{"rue de la Paix", "avenue Victor Hugo", "rue des Écoles", "boulevard Saint-Michel"},
		numberFirst: true, postal: "#####", phone: "+33 # ## ## ## ##"},
	{code: "GB", cities: []string{"London", "Manchester", "Edinburgh", "Bristol"},
		streets:     []string{"High Street", "Station Road", "Church Lane", "Victoria Road"},
		numberFirst: true, postal: "AA# #AA", phone: "+44 20 #### ####"},
	{code: "US", cities: []string{"New York", "San José", "Chicago", "Santa Fe", "Boston"},
		streets:     []string{"Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane"},
		numberFirst: true, postal: "#####", phone: "+1 ### ### ####"},
	{code: "PL", cities: []string{"Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"},
		streets: []string{"ulica Długa", "ulica Łąkowa", "aleja Róż", "ulica Świętojańska"},
		postal:  "##-###", phone: "+48 ### ### ###"},
	{code: "ES", cities: []string{"Madrid", "Málaga", "Córdoba", "A Coruña", "Sevilla"},
		streets: []string{"Calle Mayor", "Avenida de la Constitución", "Calle del Olivo", "Plaza de España"},
		postal:  "#####", phone: "+34 ### ### ###"},
	{code: "SE", cities: []string{"Stockholm", "Göteborg", "Malmö", "Västerås"},
		streets: []string{"Storgatan", "Kungsgatan", "Drottninggatan", "Sjövägen"},
		postal:  "### ##", phone: "+46 8 ### ### ##"},
	{code: "NL", cities: []string{"Amsterdam", "Rotterdam", "Den Haag", "Utrecht"},
		streets: []string{"Kerkstraat", "Dorpsstraat", "Molenweg", "Prinsengracht"},
		postal:  "#### AA", phone: "+31 20 ### ####"},
	{code: "CA", cities: []string{"Montréal", "Toronto", "Québec", "Vancouver"},
		streets:     []string{"rue Sainte-Catherine", "King Street", "Maple Road", "chemin du Lac"},
		numberFirst: true, postal: "A#A #A#", phone: "+1 ### ### ####"},
	{code: "DK", cities: []string{"København", "Aarhus", "Odense", "Aalborg"},
		streets: []string{"Nørregade", "Vestergade", "Søndergade", "Strandvejen"},
		postal:  "####", phone: "+45 ## ## ## ##"},
}

var tiers = []string{"bronze", "silver", "gold", "platinum"}

// tierWeights are cumulative per-mille weights of tiers.
var tierWeights = []int{500, 800, 950, 1000}

var emailTags = []string{"shop", "news", "billing", "work"}

var emailDomains = []string{"example.com", "example.org"}
